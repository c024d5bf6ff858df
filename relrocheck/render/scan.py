"""Output of `relrocheck scan`: the ranking of a tree's shared objects as text, Markdown, JSON.

Pure functions of a `ScanResult`. Totals always cover every library measured, also when
`top` shows only the first few.
"""

from __future__ import annotations

from typing import Any

from relrocheck import __version__
from relrocheck.render.units import human_bytes, plural
from relrocheck.scan import LibrarySummary, ScanResult, SymbolCost

DEFAULT_TOP = 20
SCAN_FORMAT_VERSION = 1

_RANKING = ("Ranked by pages written at load: each one is private dirty memory in every "
            "process that loads the library")


def _kib(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value


def _library_label(lib: LibrarySummary) -> str:
    base = lib.path.rsplit("/", 1)[-1]
    label = lib.path if lib.name == base else f"{lib.path} ({lib.name})"
    return label + (" [PIE executable]" if lib.pie else "")


def _shown(result: ScanResult, top: int | None) -> tuple[LibrarySummary, ...]:
    return result.libraries if top is None else result.libraries[:top]


def _header(result: ScanResult) -> str:
    roots = ", ".join(result.roots)
    links = "followed" if result.follow_symlinks else "not followed"
    return (f"Scanned {roots}: {plural(len(result.libraries), 'shared object')} measured, "
            f"{plural(len(result.errors), 'error')}\n"
            f"  ({result.files_examined} files read; symlinks {links}; "
            f"page size {result.page_size})")


def _totals_lines(result: ScanResult) -> list[str]:
    t = result.totals
    lines = [
        (f"Totals over {plural(t.libraries, 'shared object')}: "
        f"{t.relocated_pages} relocated pages, {_kib(t.dirty_kib)} KiB private dirty at "
        f"load ({t.load_dirty_pages} pages) in a process that loads them all, "
        f"{t.relocations} relocations, {human_bytes(t.writable_bytes)} writable"),
    ]
    if t.textrel_libraries:
        lines.append(f"  {plural(t.textrel_libraries, 'library', 'libraries')} with TEXTREL "
                     "(relocations in code: dirty code pages, a security smell)")
    if t.hint_relocations:
        kinds = ", ".join(f"{kind} {n}" for kind, n in t.hint_relocations.items())
        lines.append(f"  relocations in symbols with a hint, by kind: {kinds}")
    return lines


# -- text ------------------------------------------------------------------------------------


def _symbol_line(s: SymbolCost) -> str:
    hint = f"  [{s.hint}]" if s.hint else ""
    return (f"{'':>6} {s.pages:>8} {s.relocations:>9}  {'':>10}  "
            f"{s.section:<14} {s.label}{hint}")


def render_text(result: ScanResult, top: int | None = DEFAULT_TOP) -> str:
    out: list[str] = [_header(result), ""]
    add = out.append
    shown = _shown(result, top)
    if not result.libraries:
        add("No ELF shared objects found." if not result.errors else
            "No ELF shared object could be measured.")
    else:
        add(_RANKING + ".")
        add("")
        add(f"{'rank':>6} {'pages':>8} {'relocs':>9}  {'dirty KiB':>10}  "
            f"{'writable':<14} library / its costliest symbols")
        for rank, lib in enumerate(shown, 1):
            flags = "  TEXTREL" if lib.textrel else ""
            add(f"{rank:>6} {lib.relocated_pages:>8} {lib.relocations:>9}  "
                f"{_kib(lib.dirty_kib):>10}  {human_bytes(lib.writable_bytes):<14} "
                f"{_library_label(lib)}{flags}")
            for s in lib.symbols:
                add(_symbol_line(s))
        if len(result.libraries) > len(shown):
            add(f"  ... {len(result.libraries) - len(shown)} more "
                "(--top N shows more, --top 0 all)")
        add("")
        out.extend(_totals_lines(result))
    if result.errors:
        add("")
        add(f"Errors: {plural(len(result.errors), 'file')} could not be measured:")
        for e in result.errors:
            add(f"  {e.path}: {e.message}")
    return "\n".join(out) + "\n"


# -- Markdown --------------------------------------------------------------------------------


def _code(text: str) -> str:
    """Inline code that survives a GitHub table cell: pipes escaped, backticks replaced."""
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


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
            add(f"| {rank} | {_code(lib.name)}{flags}<br>{_code(lib.path)} | "
                f"{lib.relocated_pages} | {_kib(lib.dirty_kib)} | {lib.relocations} | "
                f"{human_bytes(lib.writable_bytes)} | {_md_symbols(lib)} |")
        if len(result.libraries) > len(shown):
            add("")
            add(f"... and {len(result.libraries) - len(shown)} more (`--top 0` lists all).")
        add("")
        first, *more = _totals_lines(result)
        add(first.replace("Totals", "**Totals**", 1) + ".")
        for line in more:
            add("")
            add(line.strip()[0].upper() + line.strip()[1:] + ".")
    else:
        add("No ELF shared object " + ("could be measured." if result.errors else "found."))
    if result.errors:
        add("")
        add(f"### Errors ({len(result.errors)})")
        add("")
        for e in result.errors:
            add(f"- {_code(e.path)}: {e.message}")
    return "\n".join(out) + "\n"


# -- JSON ------------------------------------------------------------------------------------


def _symbol_dict(s: SymbolCost) -> dict[str, Any]:
    return {"name": s.name, "demangled": s.demangled, "section": s.section, "size": s.size,
            "relocations": s.relocations, "pages": s.pages, "hint": s.hint}


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
