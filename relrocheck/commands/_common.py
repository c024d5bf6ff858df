"""Arguments and steps several subcommands share."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterable

from relrocheck.errors import RelrocheckError
from relrocheck.measure import DEFAULT_PAGE_SIZE
from relrocheck.model import Library


# Page sizes in use run from 4 KiB to 64 KiB; the bounds leave room on both sides.
MIN_PAGE_SIZE, MAX_PAGE_SIZE = 512, 1 << 20


def page_size(text: str) -> int:
    # Refuse a long string before int() parses it: thousands of digits cost time and end
    # in a ValueError whose message argparse would not show.
    if len(text) > 24:
        raise argparse.ArgumentTypeError(f"not a page size: {text[:24]!r}... "
                                         f"(a power of two from {MIN_PAGE_SIZE} to "
                                         f"{MAX_PAGE_SIZE})")
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not MIN_PAGE_SIZE <= value <= MAX_PAGE_SIZE or value & (value - 1):
        raise argparse.ArgumentTypeError(f"page size must be a power of two from "
                                         f"{MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}, not {value}")
    return value


def page_sizes(text: str) -> tuple[int, ...]:
    """A comma-separated list of page sizes ("4096,16384,65536"), the first the primary."""
    sizes = tuple(page_size(part.strip()) for part in text.split(","))
    return tuple(dict.fromkeys(sizes))


def whole_number(minimum: int, meaning: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum` ("must be 0 (all) or more")."""
    floor = f"{minimum} ({meaning})" if meaning else str(minimum)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {floor} or more")
        return value

    return parse


top_count = whole_number(0, "all")


def resolve_top(requested: int | None, default: int | None) -> int | None:
    """--top as given (0 = all), or the format's default when not given."""
    if requested is None:
        return default
    return None if requested == 0 else requested


def add_page_size(parser: argparse.ArgumentParser, several: bool = False) -> None:
    if several:
        # args.page_size is then a tuple: the first size is the primary one.
        parser.add_argument(
            "--page-size", type=page_sizes, default=(DEFAULT_PAGE_SIZE,), metavar="BYTES[,BYTES]",
            help=f"page size the page counts are made for (default {DEFAULT_PAGE_SIZE}; "
                 "AArch64 and PowerPC systems may use 16384 or 65536); several, comma-"
                 "separated (4096,16384,65536), count pages at each, symbols at the first")
        return
    parser.add_argument(
        "--page-size", type=page_size, default=DEFAULT_PAGE_SIZE, metavar="BYTES",
        help=f"page size the page counts are made for: a power of two from {MIN_PAGE_SIZE} "
             f"to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}; AArch64 and PowerPC systems "
             "may use 16384 or 65536)")


def add_format(parser: argparse.ArgumentParser, choices: Iterable[str] = ("text", "json")) -> None:
    choices = tuple(choices)
    parser.add_argument("--format", choices=choices, default="text",
                        help=f"output format ({', '.join(choices)}; default text)")


CI_FORMATS = ("sarif", "github", "codequality")


def add_output_format(parser: argparse.ArgumentParser, choices: Iterable[str]) -> None:
    """--format with the CI formats, and --source-root for the paths they report."""
    choices = tuple(choices)
    parser.add_argument(
        "--format", choices=choices, default=None,
        help=f"output format ({', '.join(choices)}; default text, or github when "
             "GITHUB_ACTIONS=true and the output is not redirected to a file)")
    parser.add_argument(
        "--source-root", metavar="DIR", default=".",
        help="folder that source paths in sarif, github and codequality output are relative "
             "to: the repository root (default the current folder)")


def output_format(args: argparse.Namespace) -> str:
    """The --format given, else github inside GitHub Actions unless stdout is a file."""
    if args.format is not None:
        return str(args.format)
    import os
    import stat

    if os.environ.get("GITHUB_ACTIONS") == "true":
        try:
            regular = stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
        except (OSError, ValueError):
            regular = True  # no real stdout (captured): not the runner's log
        if not regular:
            return "github"
    return "text"


def add_debug_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug-file", metavar="FILE", default=None,
        help="separate debug info (DWARF) giving source lines, for one LIB; it must match "
             "the library's build-id (default: the library's own, /usr/lib/debug/.build-id/, "
             "or its .gnu_debuglink)")
    parser.add_argument(
        "--no-debuginfod", dest="debuginfod", action="store_false",
        help="never ask a debuginfod server for a missing debug file (by default the servers "
             "of DEBUGINFOD_URLS are asked when no local one is found, waiting at most "
             "DEBUGINFOD_TIMEOUT seconds, default 10; the cache is DEBUGINFOD_CACHE_PATH, "
             "default ~/.cache/debuginfod_client)")


def print_error(exc: RelrocheckError) -> None:
    print(f"relrocheck: error: {exc}", file=sys.stderr)  # str(exc) is printable()


def measure_all(paths: list[str], page_size: int, analyze_options: dict | None = None
                ) -> tuple[list[Library], list[tuple[str, str]]]:
    """Measure every path; a bad file is reported on stderr and the others still measured."""
    from relrocheck.analyze import analyze

    libraries, errors = [], []
    for path in paths:
        try:
            libraries.append(analyze(path, page_size=page_size, **(analyze_options or {})))
        except RelrocheckError as exc:
            print_error(exc)
            errors.append((path, exc.message))
    return libraries, errors
