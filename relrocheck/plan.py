"""What to fix first, and what each change saves: the fix plan and the flag what-ifs.

Pure functions of a measured, hinted `Library`. Nothing here reads the file.

The fix plan answers "which symbols, fixed first, free the most pages": a page stops being
written at load only when every relocated word on it is gone, so a symbol that shares all its
pages frees nothing alone, and two tables sharing a page free it together. Greedy is enough
(the exact problem is set cover): each step takes the symbol that completes the most pages.

The what-ifs count what a linker flag changes, from the relocations themselves: binding own
exports at link time (-Bsymbolic-functions, -Bsymbolic) turns symbolic relocations into
RELATIVE ones (or removes them, where the linker relaxes a GOT load) and removes PLT slots of
calls to own functions, but a RELATIVE word is still written: the pages stay. RELR packs the
RELATIVE entries of .rela.dyn into a bitmap: the table shrinks, the pages written stay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from operator import attrgetter

from relrocheck import elf as E
from relrocheck.hints import REMOVING_KINDS
from relrocheck.model import Library, Symbol
from relrocheck.record import record
from relrocheck.words import human_bytes, plural

DEFAULT_STEPS = 10
# Candidates for the greedy plan: the symbols with the most pages to free (a large library
# has thousands of hinted symbols; those far down the ranking cannot lead a plan).
_CANDIDATES = 256
# Symbol types -Bsymbolic-functions binds (an ifunc becomes IRELATIVE, still bound).
_FUNCTION_TYPES = ("FUNC", "GNU_IFUNC")


@record
class PlanStep:
    symbol: str  # raw name, or the name pattern of look-alikes
    label: str  # what a person reads: the demangled name when there is one
    hint_kind: str
    pages_freed: int  # pages this step completes (every word on them is then fixed)
    total_freed: int  # running total, this step included
    members: tuple[str, ...] = ()  # the symbols this step fixes (several for look-alikes)


@record
class FixPlan:
    steps: tuple[PlanStep, ...]
    relocated_pages: int  # the library's relocated pages
    page_size: int

    @property
    def freed_pages(self) -> int:
        return self.steps[-1].total_freed if self.steps else 0

    def summary(self) -> str:
        if not self.steps:
            return (f"no fix frees any of the {plural(self.relocated_pages, 'relocated page')}: "
                    "each also holds words no hint here removes (GOT entries, init arrays, "
                    "records of pointers to objects or functions)")
        freed = self.freed_pages
        symbols = sum(max(1, len(step.members)) for step in self.steps)
        what = plural(len(self.steps), "symbol") if symbols == len(self.steps) else \
            f"{plural(len(self.steps), 'fix', 'fixes')} ({symbols} symbols)"
        return (f"fixing {'this' if len(self.steps) == 1 else 'these'} {what} frees {freed} of "
                f"{plural(self.relocated_pages, 'relocated page')} = "
                f"{human_bytes(freed * self.page_size)} per process")


def fix_plan(lib: Library, steps: int = DEFAULT_STEPS,
             owners: Counter[int] | None = None) -> FixPlan:
    """The symbols whose fixing frees the most pages, greedily, with the running total.

    Only symbols whose hint's fix removes the relocations count (REMOVING_KINDS): a GOT entry
    for another library, or a word that -Bsymbolic turns RELATIVE, is still written at load.
    A page .data shares with .bss is zero-filled by the loader anyway and is never freed.
    owners: group.page_owners(lib), when the caller has it already.
    """
    from relrocheck.group import Group, page_owners, similar

    if owners is None:
        owners = page_owners(lib)
    remaining = dict(owners)  # page -> owners not fixed yet
    blocked = set(lib.pages.zero_filled_addresses)
    # Relocated pages no symbol or bucket accounts for (words outside every section).
    blocked.update(set(lib.pages.relocated_addresses).difference(remaining))
    # Look-alikes (thirty generated descriptors) are one fix, one step: one change to the
    # generator or the pattern fixes them all.
    units: list[tuple[str, str, str, Counter[int], tuple[str, ...]]] = []
    for row in similar(_candidates(lib.symbols), owners):
        if isinstance(row, Group):
            pages: Counter[int] = Counter()
            for m in row.members:
                pages.update(m.page_addresses)
            units.append((row.label, f"{row.count} x {row.label}", row.hint_kind or "", pages,
                          tuple(m.name for m in row.members)))
        else:
            units.append((row.name, _label(row), row.hint.kind if row.hint else "",
                          Counter(row.page_addresses), (row.name,)))
    fixable: dict[int, int] = {}  # page -> owners among the units
    for unit in units:
        for page, n in unit[3].items():
            fixable[page] = fixable.get(page, 0) + n
    chosen: list[PlanStep] = []
    total = 0
    while units and len(chosen) < steps:
        best, best_score, best_freed = -1, 0.0, 0
        for i, unit in enumerate(units):
            score, freed = 0.0, 0
            for page, n in unit[3].items():
                left = remaining[page]
                # A page only the units' symbols relocate can be freed; share its value among
                # the owners still to fix, so a step towards a shared page counts a little.
                if page not in blocked and fixable[page] == left:
                    score += n / left
                    freed += left == n
            if (freed, score) > (best_freed, best_score):
                best, best_score, best_freed = i, score, freed
        if best < 0:
            break
        name, label, kind, pages, members = units.pop(best)
        for page, n in pages.items():
            remaining[page] -= n
            fixable[page] -= n
        total += best_freed
        chosen.append(PlanStep(symbol=name, label=label, hint_kind=kind, pages_freed=best_freed,
                               total_freed=total, members=members))
    # A plan ends with a step that frees something.
    while chosen and chosen[-1].pages_freed == 0:
        chosen.pop()
    return FixPlan(steps=tuple(chosen), relocated_pages=lib.pages.relocated,
                   page_size=lib.page_size)


def _candidates(symbols: Sequence[Symbol]) -> list[Symbol]:
    """The symbols a plan may start with: those whose hint removes their relocations, the
    _CANDIDATES with the most pages to free first (ties: more pages, relocations, by name).

    `symbols` come ranked by those costs, as Library.symbols are: the candidates are then the
    first _CANDIDATES of them with such a hint, and those that cost as much as the last one
    (the ranking breaks their ties by size, the plan by name). The scan stops there: a C++
    library has thousands of vtables further down (libLLVM-15: 5,487 candidates, 9 ms to
    sort them all).
    """
    first: list[Symbol] = []
    last_costs = None
    for s in symbols:
        if s.hint is None or s.hint.kind not in REMOVING_KINDS or not s.page_addresses:
            continue
        if last_costs is not None and _costs(s) != last_costs:
            break
        first.append(s)
        if len(first) == _CANDIDATES:
            last_costs = _costs(s)
    first.sort(key=lambda s: (-s.pages_exclusive, -s.pages, -s.relocations, s.name))
    return first[:_CANDIDATES]


_costs = attrgetter("pages_exclusive", "pages", "relocations")


@record
class WhatIf:
    flag: str  # the linker flag, as given to the compiler driver
    bound: int  # symbolic relocations bound at link time: become RELATIVE or disappear
    plt_removed: int  # PLT slots (JUMP_SLOT) that disappear: calls become direct
    relocations_removed_at_least: int  # relocations gone from the tables, at least
    table_shrink_bytes: int  # bytes .rela.dyn loses (RELR)
    pages_stay: int  # relocated pages still written at load after the change
    advice: str


def what_ifs(lib: Library) -> tuple[WhatIf, ...]:
    """What -Bsymbolic-functions, -Bsymbolic and RELR would change, counted from the file."""
    out: list[WhatIf] = []
    own = lib.own_export_relocations
    symbolic, plt = own.get("symbolic", {}), own.get("plt", {})
    pages = lib.pages.relocated
    stay = (f"pages written stay {pages} (give or take a page where the layout moves): a "
            "RELATIVE word is written at load as well, only without a symbol lookup")
    functions = sum(symbolic.get(t, 0) for t in _FUNCTION_TYPES)
    calls = sum(plt.get(t, 0) for t in _FUNCTION_TYPES)
    everything, all_calls = sum(symbolic.values()), sum(plt.values())
    if functions or calls:
        out.append(WhatIf(
            flag="-Wl,-Bsymbolic-functions", bound=functions, plt_removed=calls,
            relocations_removed_at_least=calls, table_shrink_bytes=0, pages_stay=pages,
            advice=(f"binds {plural(functions, 'symbolic relocation')} against this library's "
                    "own exported functions at link time (each becomes RELATIVE, or "
                    "disappears where the linker relaxes a GOT load)"
                    + (f" and removes {plural(calls, 'PLT slot')} of calls to them" if calls
                       else "")
                    + f"; {stay}. A program can no longer interpose those functions for calls "
                    "from inside the library.")))
    if everything > functions or all_calls > calls:
        out.append(WhatIf(
            flag="-Wl,-Bsymbolic", bound=everything, plt_removed=all_calls,
            relocations_removed_at_least=all_calls, table_shrink_bytes=0, pages_stay=pages,
            advice=(f"binds {plural(everything, 'symbolic relocation')} against own exports "
                    f"({everything - functions} to data, typeinfo and other objects, which "
                    "-Bsymbolic-functions leaves)"
                    + (f" and removes {plural(all_calls, 'PLT slot')}" if all_calls else "")
                    + f"; {stay}. Own exported data then has two copies when a program has a "
                    "copy relocation for it: only for libraries whose data programs do not "
                    "reference directly.")))
    # By the tables' encodings, not their names: a file without section headers names its
    # tables after the dynamic tags (DT_RELA), relrhack hides .relr.dyn's type.
    rel = lib.relocations
    relr = sum(n for table, n in rel.by_table.items()
               if rel.encodings.get(table) in E.RELR_ENCODINGS)
    # The MIPS GOT's local entries are relative but have no record to pack.
    packable = (rel.by_class.get("relative", 0) - relr
                - rel.by_type.get(E.MIPS_GOT_LOCAL, 0))
    plain = [table for table, enc in rel.encodings.items() if enc in (E.ENC_REL, E.ENC_RELA)]
    # APS2 tables (Android's packer) hold a RELATIVE entry in a byte or two: what RELR would
    # save there is not the entry size, so no estimate is given for them.
    if packable > 0 and plain and not {E.ENC_APS2_REL, E.ENC_APS2_RELA} & set(
            rel.encodings.values()):
        table = plain[0]
        entry = lib.word_size * (3 if rel.encodings[table] == E.ENC_RELA else 2)
        out.append(WhatIf(
            flag="-Wl,-z,pack-relative-relocs", bound=0, plt_removed=0,
            relocations_removed_at_least=0, table_shrink_bytes=packable * entry,
            pages_stay=pages,
            advice=(f"RELR packs the {packable} RELATIVE entries of {table} into a bitmap of "
                    f"a few words per page: {table} shrinks by {human_bytes(packable * entry)} "
                    f"({packable} x {entry} B) in the file and in memory; the same words are "
                    f"still written: pages written stay {pages} (give or take a page where "
                    "the layout moves). Needs a loader with DT_RELR (glibc 2.36, musl 1.2.4) "
                    "and GNU ld 2.38 or lld.")))
    return tuple(out)


def _label(s: Symbol) -> str:
    return s.demangled if s.demangled and s.demangled != s.name else s.name
