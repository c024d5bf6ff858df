"""The text report of `relrocheck report`: what a library costs every process, and where."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Callable

from relrocheck.model import Library, Symbol
from relrocheck.render.units import counts, human_bytes, kib, plural
from relrocheck.text import printable

DEFAULT_TOP = 20


def _symbol_label(s: Symbol) -> str:
    label = s.demangled if s.demangled and s.demangled != s.name else s.name
    if s.source:
        label += f"  [{s.source}]"
    return label


# The hint goes under the symbol column, wrapped: advice is one or two sentences long.
_HINT_INDENT = " " * 53
_HINT_WIDTH = 120
_CLUSTERS_SHOWN = 5


def _hint_lines(s: Symbol) -> str:
    assert s.hint is not None
    return textwrap.fill(f"hint ({s.hint.kind}): {s.hint.advice}", width=_HINT_WIDTH,
                         initial_indent=_HINT_INDENT, subsequent_indent=_HINT_INDENT + "  ",
                         break_on_hyphens=False, break_long_words=False)


def render_library(lib: Library, top: int | None = DEFAULT_TOP,
                   group_by: str | None = None) -> str:
    """The text report; `group_by` (file, directory, hint) lists groups instead of symbols."""
    out: list[str] = []
    add = out.append
    head = lib.name if lib.name == lib.path else f"{lib.name} ({lib.path})"
    add(printable(head))  # a file name may hold anything
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
    for seg in lib.segments:
        add(f"    RW PT_LOAD 0x{seg.address:x}-0x{seg.address + seg.memory_size:x}: "
            f"{plural(seg.file_pages, 'file page')}, {seg.relocated_pages} relocated")
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
    for note in r.notes:
        add(f"    note: {note}")
    from relrocheck.group import Group, group_by as grouped, page_owners, similar_rows

    symbols = [s for s in lib.symbols if s.relocations or s.size]
    owners = page_owners(lib)
    table = lib.symbol_table or "no symbol table"
    if lib.symbols_from:
        table += f" of {lib.symbols_from}"
    add("")
    if group_by is not None:
        groups = grouped(lib, group_by, owners)
        shown_groups = groups if top is None else groups[:top]
        add(f"  Symbols in writable data by {group_by}, by pages freed if fixed ({table}):")
        add(f"    {'freed':>5} {'pages':>5} {'relocs':>7} {'bytes':>10} {'symbols':>8}  {group_by}")
        for g in shown_groups:
            add(f"    {g.pages_exclusive:>5} {g.pages:>5} {g.relocations:>7} {g.size:>10} "
                f"{g.count:>8}  {g.label}")
        if not shown_groups:
            add("    none")
        if len(groups) > len(shown_groups):
            add(f"    ... {len(groups) - len(shown_groups)} more (--top N shows more, --top 0 all)")
        _plan_lines(lib, add, owners)
        return "\n".join(out) + "\n"
    # Look-alikes (one hint, one name pattern or source file) are one row.
    shown, rows = similar_rows(symbols, owners, top)
    add(f"  Symbols in writable data, by pages freed if fixed ({table}):")
    if not shown:
        add("    none")
    else:
        # "freed": the pages no other symbol relocates, what fixing this one alone saves;
        # "pages": all it touches (shared pages make that column sum to more than the total).
        add(f"    {'freed':>5} {'pages':>5} {'relocs':>7} {'bytes':>10}  {'section':<16} symbol")
        for row in shown:
            if isinstance(row, Group):
                first = row.members[0]
                each = row.each()
                add(f"    {row.pages_exclusive:>5} {row.pages:>5} {row.relocations:>7} "
                    f"{row.size:>10}  {first.section:<16} {row.count} x {row.label}"
                    + (f": {each}" if each else ""))
                if first.hint is not None:
                    add(_hint_lines(first))
                continue
            s = row
            add(f"    {s.pages_exclusive:>5} {s.pages:>5} {s.relocations:>7} {s.size:>10}  "
                f"{s.section:<16} "
                f"{_symbol_label(s)}")
            if s.hint is not None:
                add(_hint_lines(s))
            for c in s.clusters[:_CLUSTERS_SHOWN]:
                add(f"{_HINT_INDENT}probable object at 0x{c.address:x}, {c.size} B, "
                    f"{c.words} words, stride {c.stride}: {c.label}"
                    + (f" ({c.targets['own_export']} of {c.words} symbolic to own exports)"
                       if c.targets.get("own_export") else ""))
            if len(s.clusters) > _CLUSTERS_SHOWN:
                add(f"{_HINT_INDENT}... {len(s.clusters) - _CLUSTERS_SHOWN} more probable "
                    "objects (JSON: clusters)")
        if rows > len(shown):
            add(f"    ... {rows - len(shown)} more (--top N shows more, --top 0 all)")
    _plan_lines(lib, add, owners)
    return "\n".join(out) + "\n"


def _plan_lines(lib: Library, add: Callable[[str], None], owners: Counter[int]) -> None:
    from relrocheck.plan import fix_plan, what_ifs

    plan = fix_plan(lib, owners=owners)
    if plan.relocated_pages:
        add("")
        add("  Fix first (pages freed when these symbols lose their relocations):")
        for n, step in enumerate(plan.steps, 1):
            add(f"    {n:>2}. {step.label}  ({step.hint_kind}): frees {step.pages_freed}, "
                f"total {step.total_freed}")
        add(textwrap.fill(plan.summary(), width=_HINT_WIDTH, initial_indent="    ",
                          subsequent_indent="      ", break_on_hyphens=False,
                          break_long_words=False))
    flags = what_ifs(lib)
    if flags:
        add("")
        add("  What the linker flags would change (counted from this file):")
        for w in flags:
            add(textwrap.fill(f"{w.flag}: {w.advice}", width=_HINT_WIDTH, initial_indent="    ",
                              subsequent_indent="      ", break_on_hyphens=False,
                              break_long_words=False))


def render_report(libraries: list[Library], top: int | None = DEFAULT_TOP,
                  group_by: str | None = None) -> str:
    return "\n".join(render_library(lib, top, group_by) for lib in libraries)
