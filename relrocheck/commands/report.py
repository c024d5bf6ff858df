"""`relrocheck report LIB...`: writable data, relocations, pages and symbols of each library."""

from __future__ import annotations

import argparse
import sys

from relrocheck.commands._common import (
    CI_FORMATS,
    add_debug_file,
    add_output_format,
    add_page_size,
    measure_all,
    output_format,
    resolve_top,
    top_count,
)
from relrocheck.errors import EXIT_ERROR, EXIT_OK, UsageError

NAME = "report"
ORDER = 10
HELP = "measure libraries: writable data, dynamic relocations, dirty pages, costly symbols"
DESCRIPTION = """\
Measure each ELF shared library (or PIE executable): its writable sections, its dynamic
relocations (REL, RELA, RELR, PLT, Android's packed APS2 and DT_ANDROID_RELR, relrhack's
hidden RELR, the MIPS GOT) by type, class and table encoding, found through the dynamic
section the loader follows, the pages the loader dirties in every process (at several page
sizes with --page-size 4096,16384,65536), and the symbols that cause them, ranked by the pages
fixing each one frees ("freed": pages no other symbol relocates), each with a fix hint.
Look-alike symbols (one hint, one name pattern or source file) are one row. Then a fix plan
(the fixes that free the most pages, with the running total) and what -Bsymbolic-functions,
-Bsymbolic and RELR would change, counted from the file.

A file that cannot be read is reported as one error line; the others are still measured
and the exit code is 2.
"""
EPILOG = """\
examples:
  relrocheck report build/libfoo.so
  relrocheck report --top 0 --format json build/libfoo.so > report.json
  relrocheck report --page-size 4096,16384,65536 build/libfoo.so
  relrocheck report --group-by file build/libfoo.so    # which source files cost the most
  relrocheck report --format sarif --source-root . build/libfoo.so > relro.sarif
  relrocheck report --format html build/libfoo.so > pages.html      (the page map)
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("libraries", nargs="+", metavar="LIB", help="ELF files to measure")
    add_output_format(parser, ("text", "json", *CI_FORMATS, "html"))
    parser.add_argument("--top", type=top_count, default=None, metavar="N",
                        help="symbols to list (text default 20, JSON default all; 0 = all)")
    parser.add_argument("--group-by", choices=("file", "directory", "hint"), default=None,
                        help="add up the symbols per source file or directory (from DWARF "
                             "debug info; '(no source)' without it) or per hint kind, and "
                             "list those groups instead of the symbols (JSON: 'groups')")
    add_page_size(parser, several=True)
    add_debug_file(parser)


def execute(args: argparse.Namespace) -> int:
    if args.debug_file and len(args.libraries) > 1:
        raise UsageError("--debug-file belongs to one library; name only that LIB")
    primary, *others = args.page_size
    libraries, errors = measure_all(args.libraries, primary,
                                    {"debug_file": args.debug_file,
                                     "debuginfod": args.debuginfod,
                                     "also_page_sizes": tuple(others),
                                     # A report lists no GOT/PLT slots: not named.
                                     "got_slots": False})
    fmt = output_format(args)
    if fmt == "json":
        from relrocheck.serialize import report_json_chunks

        # Compact, so that the C encoder is used (ten times faster on a large library's
        # report; pipe it to `jq` to read), and in pieces, to keep the peak memory low.
        write = sys.stdout.write
        for chunk in report_json_chunks(libraries, errors, top=resolve_top(args.top, None),
                                        group_by=args.group_by):
            write(chunk)
        write("\n")
    elif fmt == "html":
        from relrocheck.render.html import MapEntry, render_html

        sys.stdout.write(render_html("relrocheck report: page map",
                                     [MapEntry(lib) for lib in libraries],
                                     [f"error: {path}: {msg}" for path, msg in errors]))
    elif fmt in CI_FORMATS:
        from relrocheck.render.ci import render_report as render_ci
        from relrocheck.render.report import DEFAULT_TOP
        from relrocheck.render.report import render_report as render_text

        top = resolve_top(args.top, DEFAULT_TOP)
        sys.stdout.write(render_ci(fmt, libraries, args.source_root, top,
                                   lambda: render_text(libraries, top=top)))
    else:
        from relrocheck.render.report import DEFAULT_TOP, render_report

        sys.stdout.write(render_report(libraries, top=resolve_top(args.top, DEFAULT_TOP),
                                       group_by=args.group_by))
    return EXIT_ERROR if errors else EXIT_OK
