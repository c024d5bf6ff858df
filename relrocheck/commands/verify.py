"""`relrocheck verify LIB...`: load each library and compare predicted and measured dirty pages."""

from __future__ import annotations

import argparse
import json
import sys

from relrocheck.commands._common import add_format, print_error, whole_number
from relrocheck.errors import EXIT_ERROR, EXIT_OK, EXIT_VIOLATION, RelrocheckError

NAME = "verify"
ORDER = 60
HELP = "LOAD libraries (runs their constructors!) and compare predicted with real dirty pages"
DESCRIPTION = """\
WARNING: this RUNS CODE FROM THE LIBRARY. Each library is loaded by the dynamic loader in a
child process, which runs its constructors (and those of its dependencies) with your
permissions. Only verify libraries you would run anyway. It is never done by default.

For each library: fsync the file (pages of a freshly written file count as dirty until
written back), load it with immediate binding (LD_BIND_NOW, as RTLD_NOW) in a fresh
`cat /proc/self/smaps` process, and sum Private_Dirty over the mappings of that file. The
result is compared with relrocheck's prediction from the file alone, per mapping and in
total, using this machine's page size. Host architecture only.

Constructors that write .data, or a library the loader process maps itself (libc), add
pages the file cannot predict; those are reported, not hidden.
"""
EPILOG = """\
examples:
  relrocheck verify build/libfoo.so
  relrocheck verify --format json /usr/lib/x86_64-linux-gnu/libz.so.1

exit codes: 0 every library within the tolerance, 1 a library differs by more pages,
2 a library could not be measured or loaded.
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("libraries", nargs="+", metavar="LIB", help="shared libraries to load")
    add_format(parser, ("text", "json"))
    parser.add_argument("--tolerance", type=whole_number(0), default=1, metavar="PAGES",
                        help="pages measured and predicted may differ by (default 1)")
    parser.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                        help="how long loading one library may take before it is an error "
                             "(default 60; the loader process and whatever its constructors "
                             "started are then killed)")


def _seconds(text: str) -> float:
    try:
        value = float(text) if len(text) <= 24 else float("nan")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text[:24]!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"timeout must be more than 0 and at most 86400 "
                                         f"seconds, not {text[:24]}")
    return value


def execute(args: argparse.Namespace) -> int:
    from relrocheck.measure import measure
    from relrocheck.render.verify import render_text, to_dict
    from relrocheck.verify import TIMEOUT_SECONDS, host_page_size, verify

    timeout = args.timeout if args.timeout is not None else TIMEOUT_SECONDS
    results, errors = [], []
    for path in args.libraries:
        try:
            results.append(verify(measure(path, page_size=host_page_size()), timeout))
        except RelrocheckError as exc:
            print_error(exc)
            errors.append((path, exc.message))
    if args.format == "json":
        json.dump(to_dict(results, errors, args.tolerance), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(results, args.tolerance))
    if errors:
        return EXIT_ERROR
    if any(abs(r.difference) > args.tolerance for r in results):
        return EXIT_VIOLATION
    return EXIT_OK
