"""`relrocheck scan DIR...`: find every shared object under folders, measure them in parallel,
rank them by the memory they dirty in every process."""

from __future__ import annotations

import argparse
import os
import sys
import time

from relrocheck.commands._common import (add_format, add_page_size, resolve_top, top_count,
                                         whole_number)
from relrocheck.errors import EXIT_ERROR, EXIT_OK

NAME = "scan"
ORDER = 50
HELP = "audit a tree: rank every shared library under folders by the dirty pages it costs"
DESCRIPTION = """\
Find the ELF shared objects under each DIR and rank them by the pages the loader writes at
load time (pages holding dynamic relocation targets, plus the .data/.bss page it
zero-fills): private dirty memory in every process that loads the library. Each library is
listed with its costliest symbols and their hint kinds; totals follow.

Files are recognised by content, not by name: every regular file starting with the ELF
magic and of type ET_DYN (shared libraries and PIE executables) is measured, once per real
file however many hard links or symlinks lead to it. Object files (.o, ET_REL), static
archives (.a) and non-ELF files are skipped silently. Symlinks inside the folders are not
followed unless --follow-symlinks is given (then a symlink loop is entered once); a DIR
given on the command line is always followed. A DIR may also be a single file.

Libraries are measured by --jobs worker processes. A file that starts like ELF but cannot
be measured (truncated, malformed, unsupported machine, unreadable) does not stop the scan:
it is listed under "Errors" at the end (and in "errors" in JSON).

While stderr is a terminal, a progress line ([done/total] path) is shown on it; nothing is
written to stderr otherwise.
"""
EPILOG = """\
exit codes:
  0  the scan completed; files that could not be measured are listed as errors
  2  a DIR does not exist or cannot be read (or is neither a folder nor a file), a bad
     option, or files were found but none could be measured

examples:
  relrocheck scan /usr/lib/x86_64-linux-gnu               the 20 costliest libraries
  relrocheck scan --top 0 --format json /opt/app/lib > scan.json
  relrocheck scan --format markdown --top 10 build/install >> "$GITHUB_STEP_SUMMARY"
  relrocheck scan --follow-symlinks --jobs 4 --symbols 5 /usr/lib /opt/*/lib
"""


def _default_jobs() -> int:
    return os.cpu_count() or 1


# relrocheck.scan.DEFAULT_SYMBOLS; not imported here, since every command builds this parser.
_DEFAULT_SYMBOLS = 3


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("roots", nargs="+", metavar="DIR",
                        help="folders to search (recursively), or single files")
    parser.add_argument("--jobs", "-j", type=whole_number(1), default=None, metavar="N",
                        help=f"worker processes (default: all cores, {_default_jobs()} here; "
                             "1 measures in this process)")
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="follow symlinks to files and folders inside the DIRs "
                             "(each real file is still measured once)")
    parser.add_argument("--top", type=top_count, default=None, metavar="N",
                        help="libraries to list (text and Markdown default 20, JSON default "
                             "all; 0 = all); totals always cover every library")
    parser.add_argument("--symbols", type=top_count, default=_DEFAULT_SYMBOLS,
                        metavar="K",
                        help=f"costliest symbols listed per library (default {_DEFAULT_SYMBOLS};"
                             " 0 = all, as for --top)")
    parser.add_argument("--group-by", choices=("file", "directory", "hint"), default=None,
                        help="list each library's costliest groups of symbols instead: per "
                             "source file or directory (reads DWARF debug info, slower) or "
                             "per hint kind")
    add_format(parser, ("text", "json", "markdown"))
    add_page_size(parser)


class _TerminalProgress:
    """`[123/1000] path` rewritten in place on stderr, at most every 0.1 s."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.last = 0.0
        self.dirty = False

    def __call__(self, done: int, total: int, path: str) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns or 80
        except OSError:
            width = 80
        line = f"[{done}/{total}] {path}"
        if len(line) >= width:
            # Keep the end: the file name tells more than the folders above it.
            prefix = f"[{done}/{total}] …"
            line = prefix + path[len(path) - max(width - 1 - len(prefix), 8):]
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self.dirty = True

    def clear(self) -> None:
        if self.dirty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def execute(args: argparse.Namespace) -> int:
    from relrocheck.scan import scan

    progress = _TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
    try:
        result = scan(args.roots, jobs=args.jobs or _default_jobs(),
                      follow_symlinks=args.follow_symlinks, page_size=args.page_size,
                      symbols=args.symbols or sys.maxsize, progress=progress,
                      group_by=args.group_by)
    finally:
        if progress is not None:
            progress.clear()

    if args.format == "json":
        import json

        from relrocheck.render.scan import scan_document

        document = scan_document(result, top=resolve_top(args.top, None))
        # Compact, like `report`: the indenting encoder is pure Python (pipe to `jq` to read).
        sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    else:
        from relrocheck.render.scan import DEFAULT_TOP, render_markdown, render_text

        render = render_markdown if args.format == "markdown" else render_text
        sys.stdout.write(render(result, top=resolve_top(args.top, DEFAULT_TOP)))
    # Broken files among good ones are findings of the audit, not a failure of it; only a
    # scan that measured nothing of what it found is.
    if result.errors and not result.libraries:
        return EXIT_ERROR
    return EXIT_OK
