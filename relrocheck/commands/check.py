"""`relrocheck check LIB...` (the default command): gate libraries on a policy and a baseline.

Also `relrocheck --baseline update LIB...`, which records the libraries' current numbers, and
the build-system contract: `--stamp FILE` is written only on success, `--depfile FILE` names
the policy and baseline the check read (Makefile syntax, target = the stamp).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import TYPE_CHECKING

from relrocheck.commands._common import (
    CI_FORMATS,
    add_output_format,
    add_page_size,
    measure_all,
    resolve_top,
    output_format,
    top_count,
)
from relrocheck.errors import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_VIOLATION,
    BaselineError,
    RelrocheckError,
    UsageError,
)
from relrocheck.measure import DEFAULT_PAGE_SIZE

if TYPE_CHECKING:
    from relrocheck.baseline import Entry
    from relrocheck.gate import GateRun, Outcome
    from relrocheck.model import Library
    from relrocheck.policy import Policy

NAME = "check"
ORDER = 20
HELP = "fail when libraries break their policy or grow past the baseline (default command)"
DESCRIPTION = """\
Measure each library and judge it: hard rules (TEXTREL fails by default; RELRO can be
required), absolute limits from the policy, and regressions against the baseline (by default
no growth of relocated pages, relocations, static initializers or writable bytes, and no new
symbol with relocations unless the policy allowlists it).

On failure it prints what failed, a bloat-o-meter style diff against the baseline, fixes for
the worst symbols where one is known, and the exact command that accepts the change:

  relrocheck --baseline update LIB... [--policy P] [--baseline-file B]

which rewrites the entries of the given libraries only (keeping the others), atomically and
under a lock on the baseline's folder, so several build steps may update one baseline file at
once. Commit the
baseline: a growth then shows up, and is justified, in its reviewed diff.

Without --policy the defaults apply and the baseline is ./relro-baseline.json. With a policy,
the baseline lives where the policy's `baseline.file` says, relative to the policy file
(default relro-baseline.json beside it); --baseline-file overrides both. A missing baseline, or
a library without an entry, fails with the command that creates it, unless the policy says
`baseline: {missing: pass}`.
"""
EPILOG = """\
examples:
  relrocheck check build/libfoo.so --policy relro.yaml
  relrocheck --baseline update build/libfoo.so --policy relro.yaml
  relrocheck check --baseline-file relro-baseline.json build/*.so --format markdown \\
      >> "$GITHUB_STEP_SUMMARY"
  relrocheck check build/*.so --format sarif > relro.sarif    (GitHub code scanning)
  relrocheck check build/*.so --format html > relro.html      (the page map, to look at)
  relrocheck check build/libfoo.so --stamp build/libfoo.relro.stamp \\
      --depfile build/libfoo.relro.d          (for a build system rule)

exit codes: 0 within policy (or baseline updated), 1 violation or regression,
2 usage or input error (unreadable library, invalid policy, corrupt baseline).
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("libraries", nargs="+", metavar="LIB", help="ELF files to check")
    parser.add_argument("--policy", metavar="FILE",
                        help="policy (YAML; `relrocheck schema` prints its JSON Schema)")
    parser.add_argument("--baseline-file", metavar="FILE",
                        help="baseline file (overrides the policy's baseline.file)")
    parser.add_argument("--baseline", choices=("check", "update"), default="check",
                        help="check against the baseline (default), or update: record the "
                             "libraries' current numbers in it")
    add_output_format(parser, ("text", "json", "markdown", *CI_FORMATS, "html"))
    parser.add_argument("--top", type=top_count, default=None, metavar="N",
                        help="changed symbols to list per library (text and Markdown default "
                             "20, JSON all; 0 = all)")
    parser.add_argument("--stamp", metavar="FILE",
                        help="touch FILE on success, delete it on failure (parent folders are "
                             "created): the output of a build rule")
    parser.add_argument("--depfile", metavar="FILE",
                        help="with --stamp: write a Makefile-syntax depfile 'STAMP: POLICY "
                             "BASELINE' (plus an empty rule per prerequisite, like gcc -MP), "
                             "also on failure, so the rule reruns when they change")
    add_page_size(parser)


def accept_command(args: argparse.Namespace, libraries: list[str]) -> str:
    """The exact command line that records `libraries` under the same policy and baseline."""
    parts = ["relrocheck", "--baseline", "update", *libraries]
    if args.policy:
        parts += ["--policy", args.policy]
    if args.baseline_file:
        parts += ["--baseline-file", args.baseline_file]
    if args.page_size != DEFAULT_PAGE_SIZE:
        parts += ["--page-size", str(args.page_size)]
    return shlex.join(parts)


def execute(args: argparse.Namespace) -> int:
    if args.depfile and not args.stamp:
        raise UsageError("--depfile needs --stamp: the depfile's target is the stamp")
    deps: list[str] = []
    try:
        code = _execute(args, deps)
        _write_depfile(args, deps)
    except RelrocheckError:
        # The error being reported matters more than a stamp or depfile we cannot write.
        try:
            _remove_stamp(args.stamp)
        except RelrocheckError:
            pass
        _write_depfile(args, deps, quiet=True)
        raise
    if code == EXIT_OK and args.stamp:
        _write_stamp(args.stamp)
    else:
        _remove_stamp(args.stamp)
    return code


def _execute(args: argparse.Namespace, deps: list[str]) -> int:
    from relrocheck.policy import default_policy, load_policy

    if args.policy:
        deps.append(args.policy)
    policy = load_policy(args.policy) if args.policy else default_policy()
    baseline_file = args.baseline_file or policy.baseline_file
    deps.append(baseline_file)

    libraries, errors = measure_all(args.libraries, args.page_size)
    if args.baseline == "update":
        if errors:
            return EXIT_ERROR  # each error is on stderr already; a failed run writes nothing
        code = _update(args, policy, baseline_file, libraries)
    else:
        code = _check(args, policy, baseline_file, libraries, errors)
    return EXIT_ERROR if errors else code


def _check(args: argparse.Namespace, policy: Policy, baseline_file: str,
           libraries: list[Library], errors: list[tuple[str, str]]) -> int:
    from relrocheck import baseline
    from relrocheck.gate import evaluate

    stored = baseline.read(baseline_file) or {}
    outcomes = []
    for lib in libraries:
        old = stored.get(lib.name)
        if old is not None:
            _same_measurement(baseline_file, lib, old)
        outcomes.append(evaluate(lib, policy.for_library(lib), old, policy.baseline_missing))
    to_accept = [lib.path for lib, o in zip(libraries, outcomes)
                 if o.failed or (o.diff is not None and o.diff.shrank)]
    failed = _show(args, "check", baseline_file, outcomes,
                   accept_command(args, to_accept or list(args.libraries)), libraries, errors)
    return EXIT_VIOLATION if failed else EXIT_OK


def _update(args: argparse.Namespace, policy: Policy, baseline_file: str,
            libraries: list[Library]) -> int:
    from relrocheck import baseline
    from relrocheck.gate import evaluate

    by_name: dict[str, str] = {}
    for lib in libraries:
        other = by_name.setdefault(lib.name, lib.path)
        if other != lib.path:
            raise UsageError(f"{other} and {lib.path} are both named {lib.name}; a baseline "
                             "keeps one entry per name: use one baseline file for each")
    policies = [policy.for_library(lib) for lib in libraries]
    # Hard rules and limits first: a failed run changes nothing, for any of the libraries.
    outcomes = [evaluate(lib, p, None, regressions=False) for lib, p in zip(libraries, policies)]
    command = accept_command(args, list(args.libraries))
    if any(o.failed for o in outcomes):
        _show(args, "update", baseline_file, outcomes, command)
        return EXIT_VIOLATION
    entries = {lib.name: baseline.entry_from_library(lib) for lib in libraries}
    previous = baseline.update(baseline_file, entries)
    outcomes = [evaluate(lib, p, previous[lib.name], regressions=False)
                for lib, p in zip(libraries, policies)]
    _show(args, "update", baseline_file, outcomes, command)
    return EXIT_OK


def _show(args: argparse.Namespace, mode: str, baseline_file: str, outcomes: list[Outcome],
          command: str, libraries: list[Library] | None = None,
          errors: list[tuple[str, str]] | None = None) -> bool:
    """Print one run of the gate in the chosen format; whether it failed."""
    from relrocheck.gate import GateRun

    run = GateRun(mode=mode, baseline_file=baseline_file, outcomes=tuple(outcomes),
                  accept_command=command)
    _print(args, run, libraries or [], errors or [])
    return run.failed


def _same_measurement(baseline_file: str, lib: Library, old: Entry) -> None:
    """Numbers of another architecture or page size are not comparable: say so, do not judge."""
    if old.machine != lib.machine:
        raise BaselineError(f"the entry for {lib.name} was recorded for {old.machine}, this "
                            f"library is {lib.machine}: keep one baseline file per architecture",
                            baseline_file)
    if old.page_size != lib.page_size:
        raise BaselineError(f"the entry for {lib.name} was recorded with page size "
                            f"{old.page_size}, this check uses {lib.page_size}: pass "
                            f"--page-size {old.page_size} or record it anew", baseline_file)


def _print(args: argparse.Namespace, run: GateRun, libraries: list[Library],
           errors: list[tuple[str, str]]) -> None:
    from relrocheck.render import check as render
    from relrocheck.render.diff import DEFAULT_TOP

    fmt = output_format(args)
    if fmt == "json":
        sys.stdout.write(json.dumps(render.to_dict(run, resolve_top(args.top, None), libraries,
                                                   errors), indent=2) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(render.render_markdown(run, resolve_top(args.top, DEFAULT_TOP), errors))
    elif fmt == "html":
        from relrocheck.render.ci import check_html

        sys.stdout.write(check_html(run, libraries, errors))
    elif fmt in CI_FORMATS:
        from relrocheck.render.ci import render_check

        sys.stdout.write(render_check(fmt, run, libraries, args.source_root, lambda: (
            render.render_text(run, resolve_top(args.top, DEFAULT_TOP)))))
    else:
        sys.stdout.write(render.render_text(run, resolve_top(args.top, DEFAULT_TOP)))
    sys.stdout.flush()


# --- the build-system contract ------------------------------------------------------------


def _make_escape(path: str) -> str:
    """A path as a Makefile/Ninja depfile token (the escapes GCC's -MD writes)."""
    return path.replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#").replace("$", "$$")


def _write_depfile(args: argparse.Namespace, deps: list[str], quiet: bool = False) -> None:
    if not (args.stamp and args.depfile):
        return
    # Absolute prerequisites: build tools resolve relative ones against their own folder,
    # which is not necessarily ours. The target is the stamp exactly as given, since Ninja
    # matches it against the rule's output by name. As with `gcc -MP`, every prerequisite
    # also gets an empty rule: make then reruns the check when one is missing (a baseline
    # not recorded yet) instead of stopping with "No rule to make target" (Ninja >= 1.10
    # reads these lines too, and reruns for a missing prerequisite as well).
    prerequisites = [_make_escape(os.path.abspath(d)) for d in dict.fromkeys(deps)]
    text = f"{_make_escape(args.stamp)}: {' '.join(prerequisites)}\n"
    text += "".join(f"\n{p}:\n" for p in prerequisites)
    try:
        _write_file(args.depfile, text)
    except OSError as exc:
        if not quiet:
            raise UsageError(f"cannot write depfile {args.depfile}: {exc.strerror or exc}"
                             ) from None


def _write_file(path: str, text: str) -> None:
    from relrocheck.baseline import make_parent_folder

    make_parent_folder(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _write_stamp(path: str) -> None:
    try:
        _write_file(path, "relrocheck: ok\n")
    except OSError as exc:
        raise UsageError(f"cannot write stamp {path}: {exc.strerror or exc}") from None


def _remove_stamp(path: str | None) -> None:
    """A stamp exists only while its library passes: a stale one must not survive a failure."""
    if not path:
        return
    try:
        os.unlink(path)
    except OSError as exc:
        # ENOENT, and also ENOTDIR or EROFS for a stamp that cannot exist: nothing to remove.
        if os.path.lexists(path):
            raise UsageError(f"cannot remove stamp {path}: {exc.strerror or exc}") from None
