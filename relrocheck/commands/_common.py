"""Arguments and steps several subcommands share."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterable

from relrocheck.errors import RelrocheckError
from relrocheck.measure import DEFAULT_PAGE_SIZE
from relrocheck.model import Library


def page_size(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 256 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"page size must be a power of two >= 256, not {value}")
    return value


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


def add_page_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--page-size", type=page_size, default=DEFAULT_PAGE_SIZE, metavar="BYTES",
        help=f"page size the page counts are made for (default {DEFAULT_PAGE_SIZE}; "
             "AArch64 and PowerPC systems may use 16384 or 65536)")


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
