"""`relrocheck schema [NAME]`: print a JSON Schema shipped with relrocheck."""

from __future__ import annotations

import argparse
import sys

from relrocheck.errors import EXIT_OK

NAME = "schema"
ORDER = 90
HELP = "print the JSON Schema of the policy file, or of a command's JSON output"
DESCRIPTION = """\
Print a JSON Schema shipped with relrocheck: `policy` (default) describes the YAML policy
of `check`, every key with its meaning; `report`, `scan`, `check`, `diff`, `explain` and
`verify` describe the `--format json` output of that command. The schemas refer to each
other by $id (check to diff's library diff, explain to report's symbol): a validator needs
the referenced one too.

Editors validate and complete a policy with it, e.g. with the YAML language server: put
`# yaml-language-server: $schema=relro-policy.schema.json` at the top of the policy.
"""
EPILOG = """\
examples:
  relrocheck schema > relro-policy.schema.json
  relrocheck schema report
  relrocheck schema check > check.schema.json
"""

SCHEMAS = ("policy", "report", "scan", "check", "diff", "explain", "verify")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", choices=SCHEMAS, default="policy",
                        help="which schema (default policy)")


def execute(args: argparse.Namespace) -> int:
    from relrocheck.policy import schema_text

    text = schema_text(args.name)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK
