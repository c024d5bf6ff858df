"""Output of `relrocheck scan`: the ranking of a tree's shared objects as text, Markdown, JSON.

Pure functions of a `ScanResult`. Totals always cover every library measured, also when
`top` shows only the first few.
"""

from __future__ import annotations

import textwrap
from typing import Any

from relrocheck import __version__
from relrocheck.hints import HINT_KINDS
from relrocheck.render.units import human_bytes, kib, plural
from relrocheck.scan import LibrarySummary, ScanResult, SymbolCost
from relrocheck.text import printable

DEFAULT_TOP = 20
_TEXT_WIDTH = 100  # wrap long prose lines of the text output here
SCAN_FORMAT_VERSION = 1

_RANKING = ("Ranked by pages written at load: private dirty memory in every process that "
            "loads the library")


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value


def _library_label(lib: LibrarySummary) -> str:
    base = lib.path.rsplit("/", 1)[-1]
    label = lib.path if lib.name == base else f"{lib.path} ({lib.name})"
    return printable(label) + (" [PIE executable]" if lib.pie else "")


def _shown(result: ScanResult, top: int | None) -> tuple[LibrarySummary, ...]:
    return result.libraries if top is None else result.libraries[:top]


def _header(result: ScanResult) -> str:
    roots = ", ".join(result.roots)
    links = "followed" if result.follow_symlinks else "not followed"
    return (f"Scanned {roots}: {plural(len(result.libraries), 'shared object')} measured, "
            f"{plural(len(result.errors), 'error')}\n"
            f"  ({result.files_examined} files read; symlinks {links}; "
            f"page size {result.page_size})")


def _textrel_note(n: int) -> str:
    return (f"{plural(n, 'library', 'libraries')} with TEXTREL (relocations in code: dirty "
            "code pages, a security smell)")


def _totals_text(result: ScanResult) -> list[str]:
    t = result.totals
    lines = [
        f"Totals over {plural(t.libraries, 'shared object')}:",
        f"  relocated pages   {t.relocated_pages}",
        (f"  dirty at load     {kib(t.dirty_bytes)} KiB ({t.load_dirty_pages} pages) in a "
         "process that loads them all"),
        f"  relocations       {t.relocations}",
        f"  writable          {human_bytes(t.writable_bytes)}",
    ]
    if t.textrel_libraries:
        lines.append(f"  TEXTREL           {_textrel_note(t.textrel_libraries)}")
    return lines


def _totals_markdown(result: ScanResult) -> list[str]:
    t = result.totals
    lines = [(f"**Totals** over {plural(t.libraries, 'shared object')}: "
              f"{t.relocated_pages} relocated pages, {kib(t.dirty_bytes)} KiB private dirty "
              f"at load ({t.load_dirty_pages} pages) in a process that loads them all, "
              f"{t.relocations} relocations, {human_bytes(t.writable_bytes)} writable.")]
    if t.textrel_libraries:
        note = _textrel_note(t.textrel_libraries)
        lines += ["", note[0].upper() + note[1:] + "."]
    return lines


def _hint_summary(kind: str) -> str:
    """The first sentence of the kind's documentation: what it is, not yet how to fix it."""
    text = HINT_KINDS.get(kind, "")
    return text.split(". ", 1)[0].rstrip(".")


def _hint_lines(result: ScanResult) -> list[str]:
    kinds = result.totals.hint_relocations
    if not kinds:
        return []
    width = max(len(k) for k in kinds)
    indent = " " * (2 + width + 1 + 9 + 2)
    lines = ["Relocations by hint kind (relrocheck report LIB gives the fix per symbol):"]
    for kind, n in kinds.items():
        text = textwrap.wrap(_hint_summary(kind), width=max(_TEXT_WIDTH - len(indent), 40),
                             break_on_hyphens=False)
        lines.append(f"  {kind:<{width}} {n:>9}  {text[0] if text else ''}")
        lines.extend(indent + more for more in text[1:])
    return lines


# -- text ------------------------------------------------------------------------------------


def _symbol_line(s: SymbolCost) -> str:
    hint = f"  [{s.hint}]" if s.hint else ""
    group = f"{s.members} x " if s.members else ""
    return (f"{'':>6} {s.pages:>8} {s.relocations:>9}  {'':>10}  "
            f"{s.section:<14} {group}{s.label}{hint}")


def render_text(result: ScanResult, top: int | None = DEFAULT_TOP) -> str:
    out: list[str] = [_header(result), ""]
    add = out.append
    shown = _shown(result, top)
    if not result.libraries:
        add("No ELF shared objects found." if not result.errors else
            "No ELF shared object could be measured.")
    else:
        out.extend(textwrap.wrap(_RANKING + ".", width=_TEXT_WIDTH))
        add("")
        add(f"{'rank':>6} {'pages':>8} {'relocs':>9}  {'dirty KiB':>10}  "
            f"{'writable':<14} library / its costliest symbols")
        for rank, lib in enumerate(shown, 1):
            flags = "  TEXTREL" if lib.textrel else ""
            add(f"{rank:>6} {lib.relocated_pages:>8} {lib.relocations:>9}  "
                f"{kib(lib.dirty_bytes):>10}  {human_bytes(lib.writable_bytes):<14} "
                f"{_library_label(lib)}{flags}")
            for s in lib.symbols:
                add(_symbol_line(s))
        if len(result.libraries) > len(shown):
            add(f"  ... {len(result.libraries) - len(shown)} more "
                "(--top N shows more, --top 0 all)")
        add("")
        out.extend(_totals_text(result))
        hints = _hint_lines(result)
        if hints:
            add("")
            out.extend(hints)
    if result.errors:
        add("")
        add(f"Errors: {plural(len(result.errors), 'file')} could not be measured:")
        for e in result.errors:
            add(printable(f"  {e.path}: {e.message}"))
    return "\n".join(out) + "\n"


# -- Markdown --------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    """Inline code that survives a GitHub table cell: pipes escaped, backticks replaced."""
    return "`" + _cell(text.replace("`", "'")) + "`"


def _md_symbols(lib: LibrarySummary) -> str:
    parts = []
    for s in lib.symbols:
        hint = f", {s.hint}" if s.hint else ""
        parts.append(f"{_code(s.label)} ({plural(s.pages, 'page')}, "
                     f"{plural(s.relocations, 'reloc')}{hint})")
    return "<br>".join(parts)


def render_markdown(result: ScanResult, top: int | None = DEFAULT_TOP) -> str:
    t = result.totals
    out: list[str] = [f"## relrocheck scan: {plural(t.libraries, 'shared object')}", ""]
    add = out.append
    add(_header(result).replace(", ".join(result.roots),
                                ", ".join(_code(r) for r in result.roots), 1)
        .replace("\n  ", " ") + ".")
    add("")
    shown = _shown(result, top)
    if shown:
        add(f"{_RANKING}.")
        add("")
        add("| # | library | relocated pages | dirty KiB | relocations | writable | "
            "costliest symbols |")
        add("|--:|---|--:|--:|--:|--:|---|")
        for rank, lib in enumerate(shown, 1):
            flags = " **TEXTREL**" if lib.textrel else ""
            flags += " (PIE executable)" if lib.pie else ""
            add(f"| {rank} | {_code(printable(lib.name))}{flags}<br>{_code(printable(lib.path))} | "
                f"{lib.relocated_pages} | {kib(lib.dirty_bytes)} | {lib.relocations} | "
                f"{human_bytes(lib.writable_bytes)} | {_md_symbols(lib)} |")
        if len(result.libraries) > len(shown):
            add("")
            add(f"... and {len(result.libraries) - len(shown)} more (`--top 0` lists all).")
        add("")
        out.extend(_totals_markdown(result))
        kinds = result.totals.hint_relocations
        if kinds:
            add("")
            add("| hint kind | relocations | what it is |")
            add("|---|--:|---|")
            for kind, n in kinds.items():
                add(f"| {_code(kind)} | {n} | {_cell(_hint_summary(kind))} |")
            add("")
            add("`relrocheck report LIB` gives the fix for each symbol.")
    else:
        add("No ELF shared object " + ("could be measured." if result.errors else "found."))
    if result.errors:
        add("")
        add(f"### Errors ({len(result.errors)})")
        add("")
        for e in result.errors:
            add(printable(f"- {_code(e.path)}: {e.message}"))
    return "\n".join(out) + "\n"


# -- JSON ------------------------------------------------------------------------------------


def _symbol_dict(s: SymbolCost) -> dict[str, Any]:
    d = {"name": s.name, "demangled": s.demangled, "section": s.section, "size": s.size,
         "relocations": s.relocations, "pages": s.pages, "hint": s.hint}
    if s.members:
        d["members"] = s.members  # --group-by: name is the group's label
    return d


def _library_dict(rank: int, lib: LibrarySummary) -> dict[str, Any]:
    return {
        "rank": rank,
        "path": lib.path,
        "name": lib.name,
        "machine": lib.machine,
        "pie": lib.pie,
        "page_size": lib.page_size,
        "relocated_pages": lib.relocated_pages,
        "load_dirty_pages": lib.load_dirty_pages,
        "dirty_kib": _number(lib.dirty_kib),
        "relocations": lib.relocations,
        "by_class": dict(lib.by_class),
        "writable_bytes": lib.writable_bytes,
        "textrel": lib.textrel,
        "relro": lib.relro,
        "hint_relocations": dict(lib.hint_relocations),
        "symbols": [_symbol_dict(s) for s in lib.symbols],
    }


def scan_document(result: ScanResult, top: int | None = None) -> dict[str, Any]:
    """The JSON form (schemas/scan.schema.json)."""
    t = result.totals
    shown = _shown(result, top)
    return {
        "format_version": SCAN_FORMAT_VERSION,
        "tool": {"name": "relrocheck", "version": __version__},
        "scan": {
            "roots": list(result.roots),
            "follow_symlinks": result.follow_symlinks,
            "page_size": result.page_size,
            "jobs": result.jobs,
            "files_examined": result.files_examined,
        },
        "totals": {
            "libraries": t.libraries,
            "errors": len(result.errors),
            "relocated_pages": t.relocated_pages,
            "load_dirty_pages": t.load_dirty_pages,
            "dirty_kib": _number(t.dirty_kib),
            "relocations": t.relocations,
            "writable_bytes": t.writable_bytes,
            "textrel_libraries": t.textrel_libraries,
            "hint_relocations": dict(t.hint_relocations),
        },
        "libraries": [_library_dict(rank, lib) for rank, lib in enumerate(shown, 1)],
        "libraries_omitted": len(result.libraries) - len(shown),
        "errors": [{"path": e.path, "message": e.message} for e in result.errors],
    }
