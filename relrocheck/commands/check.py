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

from relrocheck.cli import discard_stdout
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
required), absolute limits from the policy, and regressions against the baseline. The
defaults gate memory, not toolchain noise: no growth of relocated pages, of relocations into
user-owned data (.data, .data.rel.ro, .init_array, .tdata) or of static initializers, no new
symbol with relocations there and no known one grown, unless the policy allowlists it (by
symbol, hint kind, section or source file). GOT/PLT slots of imports, .dynamic, padding and
pointer-free bytes fail only a strict policy:
  regression: {relocations: 0, writable_bytes: 0, tight: true}

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

RELROCHECK_SKIP=1 in the environment: print one line, write the stamp, exit 0 (for
packagers building with other flags).

exit codes: 0 within policy (or baseline updated), 1 violation or regression,
2 usage or input error (unreadable library, invalid policy, corrupt baseline, or a passing
verdict that could not be written because stdout is closed).
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
    parser.add_argument("--prune", action="store_true",
                        help="with --baseline update: drop the entries of every library not "
                             "given (libraries removed or renamed, e.g. by a SONAME bump); "
                             "give all the libraries the baseline guards")
    parser.add_argument("--stamp", metavar="FILE",
                        help="touch FILE on success, delete it on failure (parent folders are "
                             "created): the output of a build rule")
    parser.add_argument("--depfile", metavar="FILE",
                        help="with --stamp: write a Makefile-syntax depfile 'STAMP: POLICY "
                             "BASELINE' (plus an empty rule per prerequisite, like gcc -MP), "
                             "also on failure, so the rule reruns when they change")
    parser.add_argument("--accept-command", action="append", default=[], metavar="CMD",
                        help="a command that accepts the change, printed on failure before the "
                             "relrocheck command that does the same (repeatable; a build "
                             "system passes its own, e.g. 'cmake --build DIR --target "
                             "relro-baseline-update-T')")
    add_page_size(parser)


def accept_command(args: argparse.Namespace, libraries: list[str],
                   baseline_file: str | None = None) -> str:
    """The exact command lines that record `libraries` under the same policy and baseline.

    First the ones the build system passed (--accept-command), then relrocheck's own, with
    absolute paths: a build runs the check from its build folder, and a command pasted from
    the log runs wherever the reader's shell is. One command per line.
    """
    parts = ["relrocheck", "--baseline", "update", *map(os.path.abspath, libraries)]
    if args.policy:
        parts += ["--policy", os.path.abspath(args.policy)]
    if args.baseline_file:
        parts += ["--baseline-file", os.path.abspath(args.baseline_file)]
    elif baseline_file and not args.policy:
        # The default baseline is relative to the current folder, which a pasted command's
        # is not.
        parts += ["--baseline-file", os.path.abspath(baseline_file)]
    if args.page_size != DEFAULT_PAGE_SIZE:
        parts += ["--page-size", str(args.page_size)]
    return "\n".join([*getattr(args, "accept_command", []), shlex.join(parts)])


def execute(args: argparse.Namespace) -> int:
    if args.depfile and not args.stamp:
        raise UsageError("--depfile needs --stamp: the depfile's target is the stamp")
    if args.prune and args.baseline != "update":
        raise UsageError("--prune needs --baseline update: it drops entries from the baseline")
    _refuse_outputs_over_inputs(args, [*args.libraries, *([args.policy] if args.policy else [])])
    args.output_lost = ""  # why the verdict could not be written (_write_output), if so
    if os.environ.get("RELROCHECK_SKIP") == "1":
        return _skip(args)
    deps: list[str] = []
    try:
        code = _execute(args, deps)
        _write_depfile(args, deps)
    except _Refused:
        raise  # the stamp or depfile names an input: touch neither
    except RelrocheckError:
        # The error being reported matters more than a stamp or depfile we cannot write.
        try:
            _remove_stamp(args.stamp)
        except RelrocheckError:
            pass
        _write_depfile(args, deps, quiet=True)
        raise
    if code == EXIT_OK and args.output_lost:
        # A pass nobody could read is no pass: a build must not record it in a stamp.
        _remove_stamp(args.stamp)
        raise UsageError(f"the verdict could not be written ({args.output_lost}); no stamp "
                         "written")
    if code != EXIT_OK and args.output_lost.startswith(_WRITE_FAILED):
        # A failure keeps its exit code; a disk that is full is said, a reader who left not.
        print(f"relrocheck: error: the verdict could not be written ({args.output_lost})",
              file=sys.stderr)
    if code == EXIT_OK and args.stamp:
        _write_stamp(args.stamp)
    else:
        _remove_stamp(args.stamp)
    return code


def _skip(args: argparse.Namespace) -> int:
    """RELROCHECK_SKIP=1: a packager's build with other flags never fails on this gate."""
    _write_output(args, "relrocheck: check skipped (RELROCHECK_SKIP=1 in the environment)\n")
    if args.stamp and not args.output_lost:
        _write_stamp(args.stamp)
    return EXIT_OK


class _Refused(UsageError):
    """An output path that names an input: nothing may be written or deleted."""


def _refuse_outputs_over_inputs(args: argparse.Namespace, inputs: list[str]) -> None:
    """--stamp and --depfile are written and deleted: they must never name what is read."""
    for option, output in (("--stamp", args.stamp), ("--depfile", args.depfile)):
        if not output:
            continue
        for path in inputs:
            if _same_file(output, path):
                raise _Refused(f"{option} {output} names the input {path}: it would be "
                                 "overwritten or deleted; give the stamp and depfile their "
                                 "own names")
        if args.stamp and args.depfile and output == args.depfile and _same_file(
                args.stamp, args.depfile):
            raise _Refused(f"--stamp and --depfile name the same file {output}")


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except (OSError, ValueError):
        pass
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def _execute(args: argparse.Namespace, deps: list[str]) -> int:
    from relrocheck.policy import default_policy, load_policy

    if args.policy:
        deps.append(args.policy)
    policy = load_policy(args.policy) if args.policy else default_policy()
    baseline_file = args.baseline_file or policy.baseline_file
    _refuse_outputs_over_inputs(args, [baseline_file])
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

    from relrocheck.gate import previous_soname

    stored = baseline.read(baseline_file) or {}
    outcomes = []
    names = {lib.name for lib in libraries}
    for lib in libraries:
        old = stored.get(lib.name)
        notes: tuple[str, ...] = ()
        previous = previous_soname(lib.name, stored, names) if old is None else None
        if previous is not None:
            old = stored[previous]
            notes = (f"SONAME changed: compared with the entry of {previous}; "
                     "`--baseline update` records it under the new name (add --prune, with "
                     "every library, to drop the old entry)",)
        if old is not None:
            _same_measurement(baseline_file, lib, old)
            change = baseline.configuration_change(old, lib)
            if change:
                notes += (f"built differently from the baseline ({change}): toolchain-owned "
                          "bytes and counts may differ, which the default rules do not judge "
                          "(or keep one baseline per configuration)",)
        outcomes.append(evaluate(lib, policy.for_library(lib), old, policy.baseline_missing,
                                 notes=notes))
    to_accept = [lib.path for lib, o in zip(libraries, outcomes)
                 if o.failed or (o.diff is not None and o.diff.shrank)]
    failed = _show(args, "check", baseline_file, outcomes,
                   accept_command(args, to_accept or list(args.libraries), baseline_file),
                   libraries, errors)
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
    command = accept_command(args, list(args.libraries), baseline_file)
    if any(o.failed for o in outcomes):
        _show(args, "update", baseline_file, outcomes, command)
        return EXIT_VIOLATION
    entries = {lib.name: baseline.entry_from_library(lib) for lib in libraries}
    pruned: list[str] = []
    previous = baseline.update(baseline_file, entries, prune=args.prune, pruned=pruned)
    notes = (f"pruned from {baseline_file}: {', '.join(sorted(pruned))}",) if pruned else ()
    outcomes = [evaluate(lib, p, previous[lib.name], regressions=False, notes=notes if i == 0
                         else ()) for i, (lib, p) in enumerate(zip(libraries, policies))]
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
        text = json.dumps(render.to_dict(run, resolve_top(args.top, None), libraries, errors),
                          indent=2) + "\n"
    elif fmt == "markdown":
        text = render.render_markdown(run, resolve_top(args.top, DEFAULT_TOP), errors)
    elif fmt == "html":
        from relrocheck.render.ci import check_html

        text = check_html(run, libraries, errors)
    elif fmt in CI_FORMATS:
        from relrocheck.render.ci import render_check

        text = render_check(fmt, run, libraries, args.source_root, lambda: (
            render.render_text(run, resolve_top(args.top, DEFAULT_TOP))))
    else:
        text = render.render_text(run, resolve_top(args.top, DEFAULT_TOP))
    _write_output(args, text)


_WRITE_FAILED = "writing stdout failed"


def _write_output(args: argparse.Namespace, text: str) -> None:
    """Write and flush the verdict; a closed stdout, a reader that left (`| true`) or a
    failed write (a full disk) does not change the exit code of a failure, and makes a pass
    an error (no stamp: see execute)."""
    try:
        if sys.stdout is None:  # started with stdout closed (>&-)
            raise BrokenPipeError
        sys.stdout.write(text)
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # ValueError: a closed file object
        args.output_lost = "stdout is closed or its reader left"
        discard_stdout()
    except OSError as exc:
        args.output_lost = f"{_WRITE_FAILED}: {exc.strerror or exc}"
        discard_stdout()


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
