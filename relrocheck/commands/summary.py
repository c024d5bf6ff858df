"""`relrocheck summary`: one Markdown and one JSON file judging many libraries, for a CI summary.

A build checks each library in its own step, each against its own policy and baseline; a CI
job wants one page for all of them. `summary` judges them again, exactly as `check` does, and
writes both files in one go, whatever the verdicts (a failed library is what the page is for).
The exit code is still the verdict: 0 all ok, 1 a violation, 2 a library or policy that could
not be read.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from relrocheck.commands._common import add_page_size, measure_all, print_error
from relrocheck.errors import EXIT_ERROR, EXIT_OK, EXIT_VIOLATION, RelrocheckError, UsageError

if TYPE_CHECKING:
    from relrocheck.render.summary import Judged

NAME = "summary"
ORDER = 25
HELP = "judge many libraries, each with its own policy and baseline; write one Markdown and " \
       "one JSON summary"
DESCRIPTION = """\
Judge libraries as `check` does and write the verdicts of all of them to one Markdown file
(a table, then what failed and the diff, for a CI step summary or a pull-request comment) and
one JSON file (for tools). Both are written whatever the verdicts.

Libraries given as LIB use --policy and --baseline-file; each --check LIB POLICY BASELINE
brings its own (POLICY or BASELINE '' or '-' means none, as when the option is left out of
`check`). The CMake and Meson integrations build a `relro-summary` target that runs this.
"""
EPILOG = """\
examples:
  relrocheck summary build/*.so --policy relro.yaml --markdown relro.md --json relro.json
  relrocheck summary --check build/liba.so a/relro.yaml '' \\
      --check build/libb.so '' b/relro-baseline.json --markdown relro.md
  cat relro.md >> "$GITHUB_STEP_SUMMARY"

exit codes: 0 all within policy, 1 a violation or regression, 2 usage or input error (the
files are written all the same, listing the libraries that could not be read).
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("libraries", nargs="*", metavar="LIB",
                        help="ELF files judged with --policy and --baseline-file")
    parser.add_argument("--policy", metavar="FILE", help="policy of the LIB arguments")
    parser.add_argument("--baseline-file", metavar="FILE",
                        help="baseline of the LIB arguments (overrides the policy's)")
    parser.add_argument("--check", nargs=3, action="append", default=[],
                        metavar=("LIB", "POLICY", "BASELINE"),
                        help="one more library with its own policy and baseline ('' or - = none); "
                             "repeatable")
    parser.add_argument("--markdown", metavar="FILE", help="write the Markdown summary here")
    parser.add_argument("--json", metavar="FILE", help="write the JSON summary here")
    add_page_size(parser)


def execute(args: argparse.Namespace) -> int:
    if not args.markdown and not args.json:
        raise UsageError("summary needs --markdown FILE, --json FILE or both")
    groups = [(list(args.libraries), args.policy, args.baseline_file)] if args.libraries else []
    groups += [([lib], _given(policy), _given(baseline)) for lib, policy, baseline in args.check]
    if not groups:
        raise UsageError("summary needs a library: LIB or --check LIB POLICY BASELINE")

    judged: list[Judged] = []
    errors = 0
    for libraries, policy, baseline_file in groups:
        try:
            group, group_errors = _judge(libraries, policy, baseline_file, args.page_size)
        except RelrocheckError as exc:
            # A bad policy or baseline spoils its own libraries only.
            print_error(exc)
            group = [_error(path, policy, baseline_file, str(exc)) for path in libraries]
            group_errors = len(libraries)
        judged += group
        errors += group_errors

    from relrocheck.render import summary as render

    if args.markdown:
        _write(args.markdown, render.render_markdown(judged))
    if args.json:
        _write(args.json, json.dumps(render.to_dict(judged), indent=2) + "\n")
    if errors:
        return EXIT_ERROR
    return EXIT_VIOLATION if any(j.outcome is not None and j.outcome.failed for j in judged) \
        else EXIT_OK


def _given(path: str) -> str | None:
    """'' or '-' in a --check triple: no such file (a build system may drop empty arguments)."""
    return None if path in ("", "-") else path


def _judge(paths: list[str], policy_file: str | None, baseline_file: str | None,
           page_size: int) -> tuple[list[Judged], int]:
    from relrocheck import baseline
    from relrocheck.gate import evaluate
    from relrocheck.policy import default_policy, load_policy
    from relrocheck.render.summary import Judged

    policy = load_policy(policy_file) if policy_file else default_policy()
    baseline_path = baseline_file or policy.baseline_file
    stored = baseline.read(baseline_path) or {}
    libraries, errors = measure_all(paths, page_size)
    judged = [_error(path, policy_file, baseline_path, message) for path, message in errors]
    for lib in libraries:
        old = stored.get(lib.name)
        if old is not None and (old.machine, old.page_size) != (lib.machine, lib.page_size):
            message = (f"{baseline_path}: the entry for {lib.name} was recorded for "
                       f"{old.machine} with page size {old.page_size}, this is {lib.machine} "
                       f"with page size {lib.page_size}: not comparable")
            print_error(RelrocheckError(message))
            judged.append(_error(lib.path, policy_file, baseline_path, message))
            errors.append((lib.path, message))
            continue
        outcome = evaluate(lib, policy.for_library(lib), old, policy.baseline_missing)
        judged.append(Judged(path=lib.path, policy=policy_file, baseline_file=baseline_path,
                             outcome=outcome, totals=baseline.library_totals(lib)))
    return judged, len(errors)


def _error(path: str, policy: str | None, baseline_file: str | None, message: str) -> Judged:
    from relrocheck.render.summary import Judged

    return Judged(path=path, policy=policy, baseline_file=baseline_file, error=message)


def _write(path: str, text: str) -> None:
    from relrocheck.baseline import make_parent_folder

    try:
        make_parent_folder(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}") from None
