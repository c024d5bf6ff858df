"""Differences between two measurements of one library, in the spirit of bloat-o-meter.

Pure: both sides are baseline entries (a Library becomes one through
`baseline.entry_from_library`), so a check against the stored baseline, a diff of two builds
and a diff of two saved JSON reports all produce the same rows.

Rows are sorted by impact: the rows that add the most relocations first (relocations are what
the loader writes, page by page, in every process), then bytes; shrinks last, the largest
shrink at the very end, as in bloat-o-meter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from relrocheck.baseline import TOTAL_METRICS, Entry, SectionEntry, SymbolEntry
from relrocheck.model import Symbol
from relrocheck.record import record

STATUSES = ("added", "removed", "grown", "shrunk", "changed")


@record
class Change:
    """One symbol or section, old -> new. Absent on one side counts as 0."""

    name: str
    section: str  # the section (for a symbol) or kind (for a section) on the newer side
    status: str  # one of STATUSES
    old_bytes: int
    new_bytes: int
    old_relocations: int
    new_relocations: int
    old_section: str = ""  # the older side's, when both sides have the row

    @property
    def moved(self) -> bool:
        """A symbol that changed section: `const` added to a pointer table (.data ->
        .data.rel.ro) shows up like this, with the same bytes and relocations."""
        return bool(self.old_section) and self.old_section != self.section

    @property
    def bytes_delta(self) -> int:
        return self.new_bytes - self.old_bytes

    @property
    def relocations_delta(self) -> int:
        return self.new_relocations - self.old_relocations


@record
class Total:
    metric: str  # one of baseline.TOTAL_METRICS
    old: int
    new: int

    @property
    def delta(self) -> int:
        return self.new - self.old


@record
class LibraryDiff:
    name: str
    old_present: bool  # False: everything is new (no baseline entry)
    totals: tuple[Total, ...]
    sections: tuple[Change, ...]  # changed sections only
    symbols: tuple[Change, ...]  # changed symbols only, by impact
    old_relro: str | None = None
    new_relro: str | None = None
    old_textrel: bool | None = None
    new_textrel: bool | None = None
    # GOT/PLT slots by name, when both sides recorded them: (name, kind, sections, bytes).
    slots_added: tuple[tuple[str, str, str, int], ...] = ()
    slots_removed: tuple[tuple[str, str, str, int], ...] = ()

    def count(self, status: str) -> int:
        return sum(1 for c in self.symbols if c.status == status)

    @property
    def bytes_up(self) -> int:
        return sum(c.bytes_delta for c in self.symbols if c.bytes_delta > 0)

    @property
    def bytes_down(self) -> int:
        return sum(c.bytes_delta for c in self.symbols if c.bytes_delta < 0)

    @property
    def relocations_up(self) -> int:
        return sum(c.relocations_delta for c in self.symbols if c.relocations_delta > 0)

    @property
    def relocations_down(self) -> int:
        return sum(c.relocations_delta for c in self.symbols if c.relocations_delta < 0)

    def total(self, metric: str) -> Total:
        for t in self.totals:
            if t.metric == metric:
                return t
        raise KeyError(metric)

    @property
    def changed(self) -> bool:
        return bool(self.symbols or self.sections or any(t.delta for t in self.totals)
                    or self.slots_added or self.slots_removed
                    or self.old_relro != self.new_relro or self.old_textrel != self.new_textrel)

    @property
    def grew(self) -> bool:
        return any(t.delta > 0 for t in self.totals) or any(
            c.bytes_delta > 0 or c.relocations_delta > 0 for c in self.symbols)

    @property
    def shrank(self) -> bool:
        return any(t.delta < 0 for t in self.totals) or any(
            c.bytes_delta < 0 or c.relocations_delta < 0 for c in self.symbols)


def _status(old_present: bool, new_present: bool, d_relocs: int, d_bytes: int) -> str:
    if not old_present:
        return "added"
    if not new_present:
        return "removed"
    # Relocations decide first: they are the load-time cost.
    key = d_relocs or d_bytes
    return "grown" if key > 0 else "shrunk" if key < 0 else "changed"


def impact_key(c: Change) -> tuple[int, int, int, int, str]:
    growing = c.relocations_delta > 0 or (c.relocations_delta == 0 and c.bytes_delta > 0)
    return (0 if growing else 1, -c.relocations_delta, -c.bytes_delta,
            -max(c.new_bytes, c.old_bytes), c.name)


def _changes(old: dict[str, tuple[str, int, int]], new: dict[str, tuple[str, int, int]]
             ) -> list[Change]:
    out = []
    for name in sorted(set(old) | set(new)):
        o, n = old.get(name), new.get(name)
        old_section, old_bytes, old_relocs = o or ("", 0, 0)
        new_section, new_bytes, new_relocs = n or ("", 0, 0)
        if o is not None and n is not None and o == n:
            continue
        out.append(Change(name=name, section=new_section or old_section,
                          status=_status(o is not None, n is not None, new_relocs - old_relocs,
                                         new_bytes - old_bytes),
                          old_bytes=old_bytes, new_bytes=new_bytes,
                          old_relocations=old_relocs, new_relocations=new_relocs,
                          old_section=old_section if n is not None else ""))
    out.sort(key=impact_key)
    return out


def _symbol_rows(symbols: dict[str, SymbolEntry]) -> dict[str, tuple[str, int, int]]:
    return {name: (s.section, s.bytes, s.relocations) for name, s in symbols.items()}


def _section_rows(sections: dict[str, SectionEntry]) -> dict[str, tuple[str, int, int]]:
    return {name: (s.kind, s.bytes, s.relocations) for name, s in sections.items()}


def diff_entries(name: str, old: Entry | None, new: Entry) -> LibraryDiff:
    """What changed from `old` (None: nothing recorded yet) to `new`."""
    old_symbols = _symbol_rows(dict(old.symbols)) if old else {}
    old_sections = _section_rows(dict(old.sections)) if old else {}
    totals = tuple(Total(m, old.totals[m] if old else 0, new.totals[m]) for m in TOTAL_METRICS)
    return LibraryDiff(
        name=name, old_present=old is not None, totals=totals,
        sections=tuple(_changes(old_sections, _section_rows(dict(new.sections)))),
        symbols=tuple(_changes(old_symbols, _symbol_rows(dict(new.symbols)))),
        old_relro=old.relro if old else None, new_relro=new.relro,
        old_textrel=old.textrel if old else None, new_textrel=new.textrel,
        **_slot_changes(old.got_slots if old else None, new.got_slots))


def _slot_changes(old: Mapping[str, tuple[str, str, int]] | None,
                  new: Mapping[str, tuple[str, str, int]] | None) -> dict[str, Any]:
    """Imports and own-export slots that came or went, by name (a slot that only moved
    between .got and .got.plt, as -z now does, is no change)."""
    if old is None or new is None:
        return {}
    return {"slots_added": tuple((n, *new[n]) for n in sorted(set(new) - set(old))),
            "slots_removed": tuple((n, *old[n]) for n in sorted(set(old) - set(new)))}


def demangled_labels(symbols: Iterable[Symbol]) -> dict[str, str]:
    """Raw name -> demangled name, for the symbols whose names demangle: what the rows show."""
    return {s.name: s.demangled for s in symbols if s.demangled and s.demangled != s.name}
