"""The text report of `relrocheck report`: what a library costs every process, and where."""

from __future__ import annotations

import textwrap

from relrocheck.model import Library, Symbol
from relrocheck.render.units import counts, human_bytes, kib, plural

DEFAULT_TOP = 20


def _symbol_label(s: Symbol) -> str:
    label = s.demangled if s.demangled and s.demangled != s.name else s.name
    if s.source:
        label += f"  [{s.source}]"
    return label


# The hint goes under the symbol column, wrapped: advice is one or two sentences long.
_HINT_INDENT = " " * 47
_HINT_WIDTH = 120


def _hint_lines(s: Symbol) -> str:
    assert s.hint is not None
    return textwrap.fill(f"hint ({s.hint.kind}): {s.hint.advice}", width=_HINT_WIDTH,
                         initial_indent=_HINT_INDENT, subsequent_indent=_HINT_INDENT + "  ",
                         break_on_hyphens=False, break_long_words=False)


def render_library(lib: Library, top: int | None = DEFAULT_TOP) -> str:
    out: list[str] = []
    add = out.append
    head = lib.name if lib.name == lib.path else f"{lib.name} ({lib.path})"
    add(head)
    add(f"  {lib.machine} ELF{lib.elf_class} {lib.endian}-endian {lib.file_type}"
        f"{' (PIE)' if lib.pie else ''}, page size {lib.page_size}"
        f" (file supports up to {lib.max_page_size})")
    relro = {"full": "full", "partial": "partial (no BIND_NOW: .got.plt stays writable)",
             "none": "none (no PT_GNU_RELRO)"}[lib.relro]
    textrel = "no" if not lib.textrel else ("YES, in " + ", ".join(lib.textrel_sections)
                                            if lib.textrel_sections else "YES (DT_TEXTREL)")
    add(f"  RELRO: {relro}   TEXTREL: {textrel}")
    init_parts = [plural(lib.init_array_entries, ".init_array entry", ".init_array entries")]
    if lib.has_dt_init:
        init_parts.append("DT_INIT")
    add(f"  static initializers: {lib.static_initializers} ({' + '.join(init_parts)})")
    add("")
    p = lib.pages
    extra = p.load_dirty - p.relocated
    add(f"  Pages written at load: {p.relocated} relocated"
        + (f" + {extra} .data/.bss page zero-filled" if extra else "")
        + f" = {kib(p.load_dirty * p.page_size)} KiB private dirty in every process")
    for other in lib.pages_by_size:
        zero = other.load_dirty - other.relocated
        add(f"    at {other.page_size}-byte pages: {other.relocated} relocated"
            + (f" + {zero} zero-filled" if zero else "")
            + f" = {kib(other.load_dirty * other.page_size)} KiB; writable file-backed "
            f"{plural(other.writable_file_backed, 'page')}")
    add(f"  Writable file-backed: {plural(p.writable_file_backed, 'page')} "
        f"({human_bytes(lib.writable_bytes)}) at most; zero-fill (.bss/.tbss): "
        f"{human_bytes(lib.zero_fill_bytes)}")
    for g in lib.segments:
        add(f"    RW PT_LOAD 0x{g.address:x}-0x{g.address + g.memory_size:x}: "
            f"{plural(g.file_pages, 'file page')}, {g.relocated_pages} relocated")
    if lib.relro_range is not None:
        start, end = lib.relro_range
        add(f"    PT_GNU_RELRO 0x{start:x}-0x{end:x}: read-only once relocated "
            f"({human_bytes(end - start)})")
    add("")
    add(f"  {'Writable sections':<24}{'size':>12}{'relocs':>9}  kind")
    for section in lib.sections:
        marker = "" if section.writable else "  <- TEXTREL"
        add(f"    {section.name:<22}{section.size:>12}{section.relocations:>9}  "
            f"{section.kind}{marker}")
    r = lib.relocations
    add("")
    no_ops = f" ({r.no_ops} of type NONE write nothing)" if r.no_ops else ""
    add(f"  Dynamic relocations: {r.total}{no_ops}")
    if r.total:
        add(f"    by class: {counts(r.by_class)}")
        add(f"    by type:  {counts(r.by_type)}")
        add("    by table: " + ", ".join(
            f"{name} {count}" + (f" ({r.encodings[name]})" if name in r.encodings else "")
            for name, count in r.by_table.items()))
    symbols = [s for s in lib.symbols if s.relocations or s.size]
    shown = symbols if top is None else symbols[:top]
    add("")
    table = lib.symbol_table or "no symbol table"
    if lib.symbols_from:
        table += f" of {lib.symbols_from}"
    add(f"  Symbols in writable data, by cost ({table}):")
    if not shown:
        add("    none")
    else:
        add(f"    {'pages':>5} {'relocs':>7} {'bytes':>10}  {'section':<16} symbol")
        for s in shown:
            add(f"    {s.pages:>5} {s.relocations:>7} {s.size:>10}  {s.section:<16} "
                f"{_symbol_label(s)}")
            if s.hint is not None:
                add(_hint_lines(s))
        if len(symbols) > len(shown):
            add(f"    ... {len(symbols) - len(shown)} more (--top N shows more, --top 0 all)")
    return "\n".join(out) + "\n"


def render_report(libraries: list[Library], top: int | None = DEFAULT_TOP) -> str:
    return "\n".join(render_library(lib, top) for lib in libraries)
