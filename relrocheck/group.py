"""Less to read: symbols that are one problem become one row.

Generated code repeats itself: thirty event descriptors of 16 bytes with one string pointer
each, all with the same hint. `similar` folds such runs (same hint, section, size,
relocations and name pattern, or the same source file) into one `Group`; `group_by` adds up
a library's symbols per source file, source directory or hint kind (`--group-by`).

A group's pages are the union of its members' pages, and its freed pages those on which
only its members relocate words: the same definition as a symbol's `pages_exclusive`.
Pure functions of the model.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain

from relrocheck.model import Library, Symbol
from relrocheck.record import record

GROUP_KEYS = ("file", "directory", "hint")
_MINIMUM = 3  # fewer look-alikes read fine one by one


@record
class Group:
    label: str  # a name pattern (`_EFL_UI_*_EVENT_CHANGED`), a file, a directory or a kind
    hint_kind: str | None  # the members' one hint kind, if they share one
    members: tuple[Symbol, ...]
    relocations: int
    size: int
    pages: int  # distinct pages the members' relocation targets touch
    pages_exclusive: int  # of those, pages no symbol outside the group relocates

    @property
    def count(self) -> int:
        return len(self.members)

    def each(self) -> str | None:
        """"16 B, 1 string pointer each" when the members are alike, else None."""
        first = self.members[0]
        if any(m.size != first.size or m.relocations != first.relocations for m in self.members):
            return None
        what = "pointer" if first.relocations == 1 else "pointers"
        if self.hint_kind == "string_pointer_table":
            what = "string " + what
        return f"{first.size} B, {first.relocations} {what} each"


def page_owners(lib: Library) -> Counter[int]:
    """How many symbols and buckets relocate a word on each page."""
    return _pages_of(lib.symbols)


def _pages_of(symbols: Iterable[Symbol]) -> Counter[int]:
    # One count over all their pages: Counter.update per symbol checks its argument for a
    # Mapping each time, through the ABC machinery (libLLVM-15's 6,118 symbols: 10 ms -> 4 ms).
    return Counter(chain.from_iterable([s.page_addresses for s in symbols]))


def make_group(label: str, members: Sequence[Symbol], owners: Counter[int]) -> Group:
    inside = _pages_of(members)
    kinds = {m.hint.kind if m.hint else None for m in members}
    return Group(label=label, hint_kind=kinds.pop() if len(kinds) == 1 else None,
                 members=tuple(members), relocations=sum(m.relocations for m in members),
                 size=sum(m.size for m in members), pages=len(inside),
                 pages_exclusive=sum(1 for page, n in inside.items() if owners[page] == n))


def name_pattern(names: Sequence[str]) -> str | None:
    """The names' common prefix and suffix around one `*`, or None if too little is shared."""
    prefix = os.path.commonprefix(list(names))
    suffix = os.path.commonprefix([n[len(prefix):][::-1] for n in names])[::-1]
    if len(prefix) + len(suffix) < 4:
        return None
    return f"{prefix}*{suffix}"


def similar(symbols: Iterable[Symbol], owners: Counter[int],
            minimum: int = _MINIMUM) -> list[Symbol | Group]:
    """The symbols in their order, look-alikes folded into one Group at the first one's place.

    Look-alikes share the hint kind, section, size and relocation count, and a name pattern
    or a source file. Symbols without a hint stay single: nothing to say about them at once.
    """
    return similar_rows(symbols, owners, None, minimum)[0]


def similar_rows(symbols: Iterable[Symbol], owners: Counter[int], limit: int | None = None,
                 minimum: int = _MINIMUM) -> tuple[list[Symbol | Group], int]:
    """The first `limit` rows of `similar` (all when None), and how many rows it has.

    A report shows twenty rows of thousands: the groups further down are counted, not made
    (making one adds up its members' pages).
    """
    symbols = list(symbols)
    label_of, member_of = _look_alikes(symbols, minimum)
    out: list[Symbol | Group] = []
    rows = 0
    for s in symbols:
        members = member_of.get(id(s))
        if members is not None and id(s) not in label_of:
            continue  # a later member of a group: the group stands at its first one's place
        if limit is None or rows < limit:
            out.append(s if members is None else make_group(label_of[id(s)], members, owners))
        rows += 1
    return out, rows


def _look_alikes(symbols: list[Symbol], minimum: int
                 ) -> tuple[dict[int, str], dict[int, list[Symbol]]]:
    """The groups of look-alikes: id(first member) -> label, id(member) -> the members."""
    by_key: dict[tuple, list[Symbol]] = {}
    for s in symbols:
        if s.hint is None or s.unattributed:
            continue
        by_key.setdefault((s.hint.kind, s.section, s.size, s.relocations), []).append(s)
    label_of: dict[int, str] = {}  # id(first member) -> label
    member_of: dict[int, list[Symbol]] = {}
    for members in by_key.values():
        if len(members) < minimum:
            continue
        files = {m.source.rsplit(":", 1)[0] for m in members if m.source}
        pattern = name_pattern([m.name for m in members])
        if pattern is not None:
            label = f"`{pattern}`"
        elif len(files) == 1 and all(m.source for m in members):
            label = f"symbols of {files.pop()}"
        else:
            continue
        label_of[id(members[0])] = label
        for m in members:
            member_of[id(m)] = members
    return label_of, member_of


def group_key(s: Symbol, key: str) -> str:
    if key == "hint":
        return s.hint.kind if s.hint else "(no hint)"
    if not s.source:
        return "(no source)"
    path = s.source.rsplit(":", 1)[0]
    if key == "directory":
        return os.path.dirname(path) or "."
    return path


def group_by(lib: Library, key: str, owners: Counter[int] | None = None) -> list[Group]:
    """The library's costly symbols per source file, source directory or hint kind, ranked
    like symbols (pages freed, then pages, then relocations). owners: page_owners(lib), when
    the caller has it already."""
    if key not in GROUP_KEYS:
        raise ValueError(f"group key must be one of {', '.join(GROUP_KEYS)}, not {key!r}")
    buckets: dict[str, list[Symbol]] = {}
    for s in lib.symbols:
        if s.relocations or s.size:
            buckets.setdefault(group_key(s, key), []).append(s)
    if owners is None:
        owners = page_owners(lib)
    groups = [make_group(label, members, owners) for label, members in buckets.items()]
    groups.sort(key=lambda g: (-g.pages_exclusive, -g.pages, -g.relocations, -g.size, g.label))
    return groups
