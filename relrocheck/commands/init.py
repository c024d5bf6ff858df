"""`relrocheck init [LIB...]`: a commented starter policy (the defaults spelled out) and, for
the libraries given, the first baseline; then what to commit."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from relrocheck.commands._common import add_page_size, measure_all
from relrocheck.errors import EXIT_ERROR, EXIT_OK, EXIT_VIOLATION, UsageError

NAME = "init"
ORDER = 25
HELP = "write a starter policy (the defaults, commented) and the first baseline"
DESCRIPTION = """\
Write a starter policy with every default spelled out and explained, and, when libraries are
given, record their first baseline beside it (what `relrocheck --baseline update` does). Then
print the files to commit and the command that checks the libraries from now on.

An existing policy is never overwritten (--force replaces it); an existing baseline keeps the
entries of other libraries.
"""
EPILOG = """\
examples:
  relrocheck init build/libfoo.so                 relro.yaml + relro-baseline.json here
  relrocheck init --policy ci/relro.yaml build/*.so
"""

_GROWTH_WHY = {
    "relocated_pages": "distinct pages holding a relocation target: private dirty memory "
                       "in every process",
    "load_dirty_pages": "relocated pages plus the .data/.bss page the loader zero-fills",
    "relocations": "every dynamic relocation, GOT/PLT slots of imports included (strict)",
    "data_relocations": "relocations into .data, .data.rel.ro, .init_array, .tdata: "
                        "pointers the library's own code stores",
    "symbolic_relocations": "relocations that need a symbol lookup at load time",
    "static_initializers": "code run at every load (.init_array entries, DT_INIT)",
    "writable_bytes": "file-backed writable bytes, .dynamic, GOT and padding included (strict)",
    "zero_fill_bytes": ".bss/.tbss: free until written",
}


def starter_policy(baseline_name: str) -> str:
    """The policy `init` writes: every default, with the reason for it."""
    from relrocheck.policy import DEFAULT_GROWTH

    lines = [
        "# relrocheck policy, written by `relrocheck init`: these are the defaults, spelled out.",
        "# Every key is optional; policy.example.yaml in relrocheck's sources explains all of",
        "# them, and `relrocheck schema` prints the JSON Schema.",
        "version: 1",
        "",
        "baseline:",
        "  # Relative to this file. Commit it: accepted growth shows up in its diff.",
        f"  file: {baseline_name}",
        "  # A library without an entry fails, with the command that records it.",
        "  missing: fail",
        "",
        "rules:",
        "  # Relocations into code pages (objects built without -fPIC).",
        "  forbid_textrel: true",
        "  # none, partial or full (-Wl,-z,relro,-z,now).",
        "  minimum_relro: none",
        "",
        "# Growth allowed over the baseline: 0 = none, an integer, {absolute: N, percent: P},",
        "# or null = not gated. The defaults gate memory, not toolchain noise; the strict gate",
        "# is relocations: 0, writable_bytes: 0, tight: true.",
        "regression:",
    ]
    for metric, growth in DEFAULT_GROWTH.items():
        lines.append(f"  # {_GROWTH_WHY.get(metric, metric)}.")
        lines.append(f"  {metric}: {'null' if growth is None else growth}")
    lines += [
        "  # A new symbol with relocations in user-owned data fails unless allowlisted.",
        "  new_symbols: fail",
        "  # A known symbol whose relocations grew fails, naming it.",
        "  grown_symbols: fail",
        "  # true: shrinks fail too, so the baseline never lags behind an improvement.",
        "  tight: false",
        "",
        "# Accepted symbols, by name glob, hint kind, section or source file, with a reason:",
        "#   allow:",
        "#     - {hint: cxx_vtable, section: .data.rel.ro, reason: plugin interface}",
        "allow: []",
        "",
    ]
    return "\n".join(lines)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("libraries", nargs="*", metavar="LIB",
                        help="libraries whose first baseline to record")
    parser.add_argument("--policy", metavar="FILE", default="relro.yaml",
                        help="policy file to write (default relro.yaml)")
    parser.add_argument("--force", action="store_true", help="replace an existing policy")
    add_page_size(parser)


def execute(args: argparse.Namespace) -> int:
    from relrocheck import baseline
    from relrocheck.gate import evaluate
    from relrocheck.policy import DEFAULT_BASELINE_FILE, load_policy

    if os.path.lexists(args.policy) and not args.force:
        raise UsageError(f"{args.policy} exists; not overwritten (--force replaces it, or "
                         "run `relrocheck --baseline update LIB... --policy "
                         f"{args.policy}` to record libraries)")
    libraries, errors = measure_all(list(args.libraries), args.page_size)
    if errors:
        return EXIT_ERROR  # each error is on stderr already; nothing was written
    try:
        baseline.make_parent_folder(args.policy)
        baseline.write_atomically(args.policy, starter_policy(DEFAULT_BASELINE_FILE))
    except OSError as exc:
        raise UsageError(f"cannot write policy {args.policy}: {exc.strerror or exc}") from None
    policy = load_policy(args.policy)  # what a check will read: proven loadable here
    out = [f"relrocheck: wrote {args.policy} (the default policy, commented)\n"]
    commit = [args.policy]
    if libraries:
        outcomes = [evaluate(lib, policy.for_library(lib), None, regressions=False)
                    for lib in libraries]
        failed = [o for o in outcomes if o.failed]
        for o in failed:
            out.append(f"relrocheck: {o.name}: not recorded: "
                       + "; ".join(v.message for v in o.violations) + "\n")
        if failed:
            sys.stdout.write("".join(out))
            return EXIT_VIOLATION
        baseline.update(policy.baseline_file,
                        {lib.name: baseline.entry_from_library(lib) for lib in libraries})
        out.append(f"relrocheck: recorded {len(libraries)} "
                   f"librar{'y' if len(libraries) == 1 else 'ies'} in {policy.baseline_file}\n")
        commit.append(policy.baseline_file)
    out.append("\ncommit:\n  git add " + shlex.join(commit) + "\n")
    check = ["relrocheck", "check", *(args.libraries or ["LIB..."]), "--policy", args.policy]
    out.append("then check every build with:\n  " + shlex.join(check) + "\n")
    if not libraries:
        out.append("and record the first baseline with:\n  "
                   + shlex.join(["relrocheck", "--baseline", "update", "LIB...", "--policy",
                                 args.policy]) + "\n")
    sys.stdout.write("".join(out))
    return EXIT_OK
