"""`relrocheck schema [policy|report]`: print a JSON Schema shipped with relrocheck."""

from __future__ import annotations

import argparse
import sys

from relrocheck.errors import EXIT_OK

NAME = "schema"
ORDER = 90
HELP = "print the JSON Schema of the policy file (or of the JSON report)"
DESCRIPTION = """\
Print a JSON Schema shipped with relrocheck: `policy` (default) describes the YAML policy
of `check`, every key with its meaning; `report` describes `relrocheck report --format json`.

Editors validate and complete a policy with it, e.g. with the YAML language server: put
`# yaml-language-server: $schema=relro-policy.schema.json` at the top of the policy.
"""
EPILOG = """\
examples:
  relrocheck schema > relro-policy.schema.json
  relrocheck schema report
"""

SCHEMAS = ("policy", "report")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", choices=SCHEMAS, default="policy",
                        help="which schema (default policy)")


def execute(args: argparse.Namespace) -> int:
    from relrocheck.policy import schema_text

    text = schema_text(args.name)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK
