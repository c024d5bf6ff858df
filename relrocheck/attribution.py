"""Attribution: which owner (symbol or section remainder) each relocated word belongs to.

The address space is cut into intervals (measure.py's partition); `attribute` adds each
class's sorted relocation offsets to the owners of the intervals they fall in, and counts
per owner its relocations by class and by target kind and the pages it touches, of them
those no other owner touches: what fixing it alone would free. The compiled kernel
(kernels/attribution.c) does it in one pass per table; `attribute_python` is its twin.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from functools import partial
from itertools import chain, compress, repeat

from relrocheck.columns import pick
from relrocheck.model import TARGET_KINDS
from relrocheck.native import kernels
from relrocheck.reloctables import Table

# Per owner: ({class: relocations}, {target kind: relocations}, pages touched, of them the
# pages no other owner touches, the touched page numbers in order).
OwnerStats = tuple[dict[str, int], dict[str, int], int, int, tuple[int, ...]]


def attribute(tables: dict[str, Table], bounds: list[int], owner_of: list[int], shift: int
              ) -> tuple[dict[int, OwnerStats], set[int]]:
    """Per owner index with relocations (-1: addresses in no allocated section), its
    `OwnerStats`; and the set of all relocated page numbers (page = address >> shift).

    `tables`: one `Table` per class, in class order (each owner's class counts follow
    it); `bounds`: the sorted interval starts, the first 0; `owner_of`: each interval's
    owner.
    """
    if kernels is None:
        return attribute_python(tables, bounds, owner_of, shift)
    return kernels.attribute([(t.offsets, t.kinds) for t in tables.values()], bounds,  # type: ignore[no-any-return]
                             owner_of, shift, tuple(tables), TARGET_KINDS)


def attribute_python(tables: dict[str, Table], bounds: list[int], owner_of: list[int],
                     shift: int) -> tuple[dict[int, OwnerStats], set[int]]:
    """`attribute` in Python: the definition of what the compiled kernel returns.

    Offsets are sorted per class. When a class has fewer relocations than there are
    interval bounds, each offset is bisected into the bounds; otherwise each bound is
    bisected into the offsets, so the cost is min(n log S, S log n) C-level steps. What
    each interval holds is then added to its owner: one light step per interval and
    class, most owners having one interval.
    """
    by_class: dict[int, dict[str, int]] = {}  # owner -> class -> count, in class order
    kind_counts: list[dict[int, int]] = [{} for _ in TARGET_KINDS]  # code -> owner -> n
    touched: dict[int, set[int]] = {}  # owner -> page numbers
    for cls, table in tables.items():
        offsets, kinds = table.offsets, table.kinds
        if len(offsets) <= len(bounds):
            interval = map(operator.sub, map(partial(bisect_right, bounds), offsets),
                           repeat(1))
            owners = list(pick(owner_of, list(interval)))
            for owner, count in Counter(owners).items():
                by_class.setdefault(owner, {})[cls] = count
            for (owner, kind), count in Counter(zip(owners, kinds)).items():
                per_owner = kind_counts[kind]
                per_owner[owner] = per_owner.get(owner, 0) + count
            for owner, page in set(zip(owners, map(operator.rshift, offsets,
                                                   repeat(shift)))):
                touched.setdefault(owner, set()).add(page)
            continue
        edges = list(map(partial(bisect_left, offsets), bounds))
        edges.append(len(offsets))
        # Only intervals holding relocations; their columns are built by C-level maps.
        busy = list(compress(range(len(bounds)), map(operator.lt, edges, edges[1:])))
        los = list(pick(edges, busy))
        his = list(pick(edges, list(map(operator.add, busy, repeat(1)))))
        owners = list(pick(owner_of, busy))
        for owner, count in zip(owners, map(operator.sub, his, los)):
            per_class = by_class.setdefault(owner, {})
            per_class[cls] = per_class.get(cls, 0) + count
        for code in range(len(TARGET_KINDS)):
            if code not in kinds:
                continue
            per_owner = kind_counts[code]
            column = list(map(kinds.count, repeat(code), los, his))
            for owner, count in compress(zip(owners, column), column):
                per_owner[owner] = per_owner.get(owner, 0) + count
        first_pages = map(operator.rshift, map(offsets.__getitem__, los), repeat(shift))
        last_pages = map(operator.rshift, map(offsets.__getitem__,
                                              map(operator.sub, his, repeat(1))),
                         repeat(shift))
        for owner, first, last, lo, hi in zip(owners, first_pages, last_pages, los, his):
            pages = touched.get(owner)
            if pages is None:
                pages = touched[owner] = set()
            if first == last:
                pages.add(first)
            else:
                pages.update(_distinct_pages(offsets, lo, hi, shift))
    # Target kinds in TARGET_KINDS order, as each owner's dict is filled code by code.
    targets: dict[int, dict[str, int]] = {}
    for name, per_owner in zip(TARGET_KINDS, kind_counts):
        for owner, count in per_owner.items():
            found = targets.get(owner)
            if found is None:
                targets[owner] = {name: count}
            else:
                found[name] = count
    # A page is freed by fixing one owner only if no other owner relocates a word on it:
    # count each page's owners once (one step per owner and page, not per relocation).
    owners_per_page = Counter(chain.from_iterable(touched.values()))
    single = {page for page, count in owners_per_page.items() if count == 1}
    stats = {}
    for owner, per_class in by_class.items():
        pages = touched[owner]
        stats[owner] = (per_class, targets.get(owner, {}), len(pages),
                        len(pages & single) if single else 0,
                        tuple(sorted(pages)) if len(pages) > 1 else tuple(pages))
    return stats, set(owners_per_page)


def _distinct_pages(offsets: Sequence[int], lo: int, hi: int, shift: int) -> list[int]:
    """Pages of sorted offsets[lo:hi], one bisect per distinct page."""
    out = []
    while lo < hi:
        page = offsets[lo] >> shift
        out.append(page)
        lo = bisect_left(offsets, (page + 1) << shift, lo, hi)
    return out
