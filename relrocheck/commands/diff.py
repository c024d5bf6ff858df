"""`relrocheck diff OLD NEW`: what changed between two builds, bloat-o-meter style, no policy."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from relrocheck.commands._common import add_format, add_page_size, resolve_top, top_count
from relrocheck.errors import EXIT_OK, RelrocheckError, UsageError
from relrocheck.text import printable

if TYPE_CHECKING:
    from relrocheck.baseline import Entry
    from relrocheck.model import Library

    # One library of one side: its numbers, and the Library when the side was measured or
    # read from a report (a baseline keeps numbers only).
    Side = tuple[Entry, Library | None]

NAME = "diff"
ORDER = 30
HELP = "compare two builds of a library (ELF files, JSON reports or baseline files)"
DESCRIPTION = """\
Compare two measurements of the same library or libraries, in the format `check` prints
on failure: a summary line (symbols added/removed, grown/shrunk, bytes and relocations
up/down, relocated pages old -> new), then the changed symbols, old -> new with deltas,
sorted by impact (most added relocations first, shrinks last), then the changed sections
and totals.

OLD and NEW may each be an ELF file, a JSON report (`relrocheck report --format json`) or a
baseline file. When each side holds one library they are compared whatever their names
(libfoo.so.1 against libfoo.so.2); otherwise libraries are paired by name.

diff judges nothing: it exits 0 whatever changed (2 on unreadable input). Use `check` to
fail a build.
"""
EPILOG = """\
examples:
  relrocheck diff old/libfoo.so build/libfoo.so
  relrocheck report --format json build/libfoo.so > after.json
  relrocheck diff before.json after.json --format markdown
  relrocheck diff relro-baseline.json build/libfoo.so     what would `check` see?
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="ELF file, JSON report or baseline file")
    parser.add_argument("new", metavar="NEW", help="ELF file, JSON report or baseline file")
    add_format(parser, ("text", "json", "markdown", "html"))
    parser.add_argument("--top", type=top_count, default=None, metavar="N",
                        help="changed symbols to list per library (text and Markdown default "
                             "20, JSON all; 0 = all)")
    add_page_size(parser)


def _load(path: str, page_size: int) -> dict[str, Side]:
    """name -> (baseline Entry, Library or None) of every library in the file at `path`."""
    from relrocheck import baseline

    try:
        with open(path, "rb") as f:
            raw = f.read(4)
            if raw != b"\x7fELF":  # an ELF file is analyzed from its path, not read here
                raw += f.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw == b"\x7fELF":
        from relrocheck.analyze import analyze

        lib = analyze(path, page_size=page_size)
        return {lib.name: (baseline.entry_from_library(lib), lib)}
    try:
        data = json.loads(raw)
    except RecursionError:
        raise UsageError(f"{path}: not a relrocheck JSON report or baseline (nested too "
                         "deeply)") from None
    except ValueError:
        if b"\n<<<<<<<" in b"\n" + raw:
            baseline.parse(raw, path)  # says it is a merge conflict, and how to resolve it
        raise UsageError(f"{path}: neither an ELF file nor a relrocheck JSON report or "
                         "baseline") from None
    if isinstance(data, dict) and isinstance(data.get("libraries"), dict):
        entries = baseline.parse(raw, path)  # duplicate keys and conflict markers refused too
        return {name: (entry, None) for name, entry in entries.items()}
    if isinstance(data, dict) and isinstance(data.get("libraries"), list):
        from relrocheck.policy import schema_text
        from relrocheck.schemacheck import first_error
        from relrocheck.serialize import library_from_dict

        # A report's fields are typed by its schema before any of them is used: a mutated or
        # hand-edited report is one error line, never a traceback from deep in the diff.
        error = first_error(json.loads(schema_text("report")), data)
        if error is not None:
            where, message = error
            raise UsageError(f"{path}: not a valid relrocheck JSON report: {where}: "
                             f"{printable(message)}")

        out: dict[str, Side] = {}
        for d in data["libraries"]:
            try:
                lib = library_from_dict(d)
            except RelrocheckError as exc:
                raise UsageError(f"{path}: {exc}") from None
            total = d.get("symbols_total", len(lib.symbols))  # d is a dict: lib was read
            if not isinstance(total, int):
                raise UsageError(f"{path}: not a relrocheck JSON report (symbols_total "
                                 f"{total!r})")
            if total > len(lib.symbols):
                raise UsageError(f"{path}: the report lists only {len(lib.symbols)} of "
                                 f"{total} symbols of {lib.name}; write it with --top 0")
            # A report does not list GOT/PLT slots: the entry's are unknown (no slot diff).
            out[lib.name] = (baseline.entry_from_library(lib), lib)
        return out
    raise UsageError(f"{path}: a JSON file, but neither a relrocheck report nor a baseline")


def _pairs(old: dict[str, Side], new: dict[str, Side]
           ) -> list[tuple[str, Side | None, Side | None]]:
    if len(old) == 1 and len(new) == 1:
        (old_name, o), (new_name, n) = next(iter(old.items())), next(iter(new.items()))
        name = new_name if old_name == new_name else f"{old_name} -> {new_name}"
        return [(name, o, n)]
    return [(name, old.get(name), new.get(name)) for name in sorted(set(old) | set(new))]


def execute(args: argparse.Namespace) -> int:
    from relrocheck.diff import LibraryDiff, demangled_labels, diff_entries
    from relrocheck.render import diff as render

    old, new = _load(args.old, args.page_size), _load(args.new, args.page_size)
    # (name, (diff, labels) or None when only OLD has it, note)
    results: list[tuple[str, tuple[LibraryDiff, dict[str, str]] | None, str | None]] = []
    for name, o, n in _pairs(old, new):
        if o is not None and n is not None and o[0].page_size != n[0].page_size:
            raise UsageError(f"{name}: page counts were made for page size {o[0].page_size} in "
                             f"{args.old} and {n[0].page_size} in {args.new}; they do not compare")
        if n is None:
            results.append((name, None, "only in OLD"))
            continue
        lib = n[1] or (o[1] if o else None)
        labels = demangled_labels(lib.symbols) if lib else {}
        d = diff_entries(name, o[0] if o else None, n[0])
        results.append((name, (d, labels), None if o else "only in NEW"))

    if args.format == "html":
        sys.stdout.write(_html(_pairs(old, new)))
        return EXIT_OK
    top = resolve_top(args.top, None if args.format == "json" else render.DEFAULT_TOP)
    if args.format == "json":
        doc = {"format_version": 1, "old": args.old, "new": args.new, "libraries": [
            {"name": name, "note": note,
             "diff": None if r is None else render.diff_to_dict(r[0], r[1], top)}
            for name, r, note in results]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return EXIT_OK
    out = []
    for name, r, note in results:
        if args.format == "markdown":
            out.append(f"### {render.md_code(name)}" + (f" ({note})" if note else "") + "\n\n")
            if r is not None:
                out.append(render.render_markdown(r[0], r[1], top) + "\n")
        else:
            out.append(f"{name}" + (f" ({note})" if note else "") + ":\n")
            if r is not None:
                out.append(render.render_text(r[0], r[1], top))
    sys.stdout.write("".join(out))
    return EXIT_OK


def _html(pairs: list[tuple[str, Side | None, Side | None]]) -> str:
    """The page map of NEW, its pages marked dirty or clean against OLD where both sides
    carry page addresses (an ELF file or a JSON report; a baseline has none)."""
    from relrocheck.render.html import MapEntry, render_html

    entries, notes = [], []
    for name, o, n in pairs:
        if n is None or n[1] is None:
            notes.append(f"{name}: {'only in OLD' if n is None else 'NEW is a baseline entry'}"
                         ": no page map")
            continue
        old_lib = o[1] if o is not None else None
        note = [] if old_lib is not None else [
            "OLD has no page addresses (a baseline, or no such library): changes not marked"]
        entries.append(MapEntry(n[1], old_lib, note))
    return render_html("relrocheck diff: page map", entries, notes)
