"""Every dynamic relocation of a file, as sorted columns per class with target kinds.

Relocation tables are read as typed columns and split by class into views: linkers sort
RELATIVE entries first and by address (-z combreloc), so a class is usually one slice. Each
relocation's target kind (code, read-only data, own export, ...) is one byte of a `bytes`
aligned with the offsets: for relative relocations, of the section holding the target
(relrocheck/targets.py); for symbolic ones, whether the symbol is defined here. The MIPS
primary GOT, which the loader writes without records, is read as relocations too.
"""

from __future__ import annotations

import operator
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import groupby, repeat

from relrocheck import archtables
from relrocheck import elf as E
from relrocheck.archtables import Arch
from relrocheck.columns import compressed, is_sorted, pick
from relrocheck.elf import ElfFile, SectionHeader
from relrocheck.model import RELOCATION_CLASSES, TARGET_KINDS
from relrocheck.native import kernels
from relrocheck.record import record
from relrocheck.stringtargets import StringTargets
from relrocheck.targets import address_classifier

# Target kind codes; they fit the low 3 bits of a key when unsorted tables are merged.
KIND = {name: code for code, name in enumerate(TARGET_KINDS)}
assert len(TARGET_KINDS) <= 8
OWN, EXTERNAL, UNKNOWN = KIND["own_export"], KIND["external"], KIND["unknown"]
_EXPORT_KIND = bytes([EXTERNAL, OWN]) + bytes(254)  # translate(): defined? -> kind
# Classes whose target is a fixed kind, whatever the relocation says.
_FIXED_TARGET = {"tls": KIND["tls"], "irelative": KIND["code"], "copy": KIND["data"],
                 "other": UNKNOWN}
SYMBOL_TYPES = tuple(E.STT_NAMES.get(t, str(t)) for t in range(16))
# translate() tables: per st_info, 1 + the symbol type; per 0 or 1, a byte mask.
_TYPE_CODE = bytes((info & 0xF) + 1 for info in range(256))
_BYTE_MASK = b"\x00\xff" + bytes(254)


@record(frozen=False)
class Table:
    """Relocations of one class: sorted target addresses and, aligned, target kind codes."""

    offsets: Sequence[int]
    kinds: bytes


@record
class Relocations:
    """What `RelocationReader.read` found."""

    tables: dict[str, Table]  # by class, in RELOCATION_CLASSES order
    by_type: Counter[str]  # type name -> count (R_*_NONE included)
    by_table: dict[str, int]  # table name -> entries
    encodings: dict[str, str]  # table name -> elf.ENCODINGS value
    no_ops: int  # R_*_NONE entries: counted, in no class, writing nothing
    notes: tuple[str, ...]  # tables the section headers describe otherwise
    own_exports: dict[str, dict[str, int]]  # class -> symbol type -> relocations
    strings: StringTargets  # the relative words pointing into read-only data
    # (symbol table, offsets, infos, length of the leading RELATIVE run) of every REL and
    # RELA table: the GOT slots are named from these columns.
    symbol_columns: tuple[tuple[int, Sequence[int], Sequence[int], int], ...]


class RelocationReader:
    """Reads every relocation table of one file once (`read`).

    in_relro: whether a section lies in PT_GNU_RELRO (a relocated word pointing into it
      points to relro data).
    """

    def __init__(self, elf: ElfFile, arch: Arch, laid_out: list[SectionHeader],
                 in_relro: Callable[[SectionHeader], bool]) -> None:
        self.elf = elf
        self.arch = arch
        self.laid_out = laid_out
        self.in_relro = in_relro
        self._symbol_kinds_cache: dict[int, bytearray] = {}
        self.own_exports: dict[str, dict[str, int]] = {}  # class -> symbol type -> count
        # Relocation tables the section headers describe otherwise (RelocationTable.note).
        self.table_notes: list[str] = []
        # Whether a column is sorted, by id; the column is kept so that its id stays its own.
        self._sorted_columns: dict[int, tuple[Sequence[int], bool]] = {}
        # Relative words pointing into read-only data, counted per symbol on demand.
        self.strings = StringTargets(elf, laid_out, self.is_sorted)
        self._symbol_columns: list[tuple[int, Sequence[int], Sequence[int], int]] = []

    def read(self) -> Relocations:
        """Every dynamic relocation of the file, as `Relocations`."""
        elf, arch = self.elf, self.arch
        word = elf.word_size
        parts: dict[str, list[tuple[Sequence[int], bytes]]] = {}
        by_type: Counter[str] = Counter()
        by_table: dict[str, int] = {}
        classify = self._target_classifier()
        encodings: dict[str, str] = {}
        unread_none = 0
        for found in elf.relocation_tables():
            table = found.header
            encodings.setdefault(table.name, found.encoding)
            if found.note:
                self.table_notes.append(found.note)
            holes: list[int] = []
            offsets_col, infos, addends = elf.read_relocations(found, holes)
            if holes:
                # Zero records of a sparse file, left unread: R_*_NONE, no class, no page.
                by_type[arch.type_name(0)] += sum(holes)
                by_table[table.name] = by_table.get(table.name, 0) + sum(holes)
                unread_none += sum(holes)
            if infos is None:  # RELR: every entry a RELATIVE relocation, addend in place
                offsets = offsets_col
                by_type[arch.type_name(arch.relative_type)] += len(offsets)
                by_table[table.name] = by_table.get(table.name, 0) + len(offsets)
                targets = elf.stored_words(offsets)
                codes = classify(targets)
                self._note_strings(offsets, targets, codes)
                parts.setdefault("relative", []).append((offsets, codes))
                continue
            if not len(infos):
                by_table.setdefault(table.name, 0)
                continue
            type_shift, type_mask = (32, 0xFFFFFFFF) if word == 8 else (8, 0xFF)
            # Linkers put RELATIVE entries first (-z combreloc): that run is found by
            # comparing bytes, and only the rest is looked at entry by entry.
            head = leading_run(infos, arch.relative_type)
            self._symbol_columns.append((table.sh_link, offsets_col, infos, head))
            rest = infos[head:]
            if arch.relative_without_symbol:
                # The class may depend on the symbol: one key per info value.
                keys: Sequence[int] = rest
                info_counts = Counter(rest)
                class_of_key = {info: arch.relocation_class(info & type_mask, info >> type_shift)
                                for info in info_counts}
                type_counts: Counter[int] = Counter()
                for info, count in info_counts.items():
                    type_counts[info & type_mask] += count
            else:
                # Symbolic entries have one info value per symbol: keyed by type, by C-level
                # passes over the entries after the RELATIVE run.
                keys = list(map(operator.and_, rest, repeat(type_mask)))
                type_counts = Counter(keys)
                class_of_key = {t: arch.type_class(t) for t in type_counts}
            if head:
                type_counts[arch.relative_type] += head
            for t, count in type_counts.items():
                by_type[arch.type_name(t)] += count
            by_table[table.name] = by_table.get(table.name, 0) + len(infos)
            head_class = arch.relocation_class(arch.relative_type, 0)
            for cls, offs, infs, adds in _split_by_class(offsets_col, infos, addends, keys,
                                                         class_of_key, head, head_class):
                kinds = self._kinds_for_class(cls, offs, infs, type_shift, adds, table, classify)
                parts.setdefault(cls, []).append((offs, kinds))
        if elf.e_machine == E.EM_MIPS:
            self._mips_got(parts, by_type, by_table, encodings, classify)
        tables = {cls: _merge(parts[cls], self.is_sorted) for cls in RELOCATION_CLASSES
                  if cls in parts}
        # R_*_NONE entries are counted (readelf lists them) but write nothing: they have no
        # class, no page and no owner.
        none = unread_none + sum(len(offsets) for offsets, _ in parts.get(archtables.NO_OP, ()))
        return Relocations(tables, by_type, by_table, encodings, none, tuple(self.table_notes),
                           self.own_exports, self.strings, tuple(self._symbol_columns))

    def _mips_got(self, parts: dict[str, list[tuple[Sequence[int], bytes]]],
                  by_type: Counter[str], by_table: dict[str, int], encodings: dict[str, str],
                  classify: Callable[[Sequence[int]], bytes]) -> None:
        """The MIPS primary GOT (ElfFile.mips_got), which the loader writes without
        relocation records. Each entry is a word written at load like a relocated one:
        counted, attributed and paged as one; local entries as relative ones (their stored
        word plus the load bias), global ones as symbolic ones."""
        elf = self.elf
        got = elf.mips_got()
        if got is None:
            return
        code = E.U64 if got.word == 8 else E.U32
        local_offsets = array(code, got.local_entries)
        global_offsets = array(code, got.global_entries)
        if got.local:
            parts.setdefault("relative", []).append(
                (local_offsets, classify(elf.stored_words(list(local_offsets)))))
            by_type[E.MIPS_GOT_LOCAL] += got.local
        if got.globals:
            symbols = got.first_global + got.globals
            shndx = elf.dynamic_symbol_sections(symbols) if not any(
                s.sh_type == E.SHT_DYNSYM for s in elf.sections) else self._dynsym_shndx()
            if len(shndx) < symbols:
                raise elf.fail(f"DT_MIPS_SYMTABNO {symbols} is past the dynamic symbol table")
            kinds = bytes(EXTERNAL if shndx[i] == E.SHN_UNDEF else OWN
                          for i in range(got.first_global, symbols))
            parts.setdefault("symbolic", []).append((global_offsets, kinds))
            by_type[E.MIPS_GOT_GLOBAL] += got.globals
        by_table[got.name] = by_table.get(got.name, 0) + got.local + got.globals
        encodings[got.name] = E.ENC_MIPS_GOT

    def _dynsym_shndx(self) -> array:
        dynsym = next(s for s in self.elf.sections if s.sh_type == E.SHT_DYNSYM)
        return self.elf.symbol_columns(dynsym, ("st_shndx",)).st_shndx

    def _kinds_for_class(self, cls: str, offsets: Sequence[int], infos: Sequence[int],
                         type_shift: int, addends: Sequence[int] | None,
                         table: SectionHeader, classify) -> bytes:
        """Target kind code of each relocation of one class, aligned with its offsets."""
        if cls == archtables.NO_OP:
            return b""
        if cls in _FIXED_TARGET:
            return bytes([_FIXED_TARGET[cls]]) * len(offsets)
        if cls == "relative":
            if addends is None:
                addends = self.elf.stored_words(list(offsets))
            codes = classify(addends)
            self._note_strings(offsets, addends, codes)
            return codes
        # symbolic and plt: the target is a symbol of the table's linked symbol table.
        syms = list(map(operator.rshift, infos, repeat(type_shift)))
        kinds = self._symbol_kinds(table, max(syms) + 1 if syms else 0)
        if syms and max(syms) >= len(kinds):
            raise self.elf.fail(f"relocation section {table.name}: symbol index {max(syms)} "
                                f"is past the end of its symbol table")
        codes = bytes(pick(kinds, syms))
        if OWN in codes:
            self._count_own_exports(cls, table, syms)
        return codes

    def is_sorted(self, column: Sequence[int]) -> bool:
        """columns.is_sorted, once per column: the merge of tables and the string-target
        count ask it of the same RELATIVE run."""
        known = self._sorted_columns.get(id(column))
        if known is None:
            known = self._sorted_columns[id(column)] = (column, is_sorted(column))
        return known[1]

    def _note_strings(self, offsets: Sequence[int], targets: Sequence[int], codes: bytes
                      ) -> None:
        """Keep a relative table part's targets when some point into read-only data, for
        the string-target counts (no copy: the columns exist anyway)."""
        if KIND["rodata"] in codes:
            self.strings.note(offsets, targets)

    def _count_own_exports(self, cls: str, table: SectionHeader, syms: list[int]) -> None:
        """Relocations of `cls` against own exports, by the symbol's type (FUNC, OBJECT...):
        what -Bsymbolic-functions (functions only) and -Bsymbolic (all) would bind."""
        if table.sh_link == 0 or not syms:
            return  # no section headers (sstrip): the symbol types are not at hand
        symtab = self.elf.section_by_index(table.sh_link, f"relocation section {table.name}")
        # Only the symbols relocations name are read, not what sh_size claims.
        entsize = E.SYMBOL_ENTSIZE[self.elf.elf_class]
        wanted = min(symtab.sh_size, (max(syms) + 1) * entsize)
        columns = self.elf.symbol_columns(symtab._replace(sh_size=wanted),
                                          ("st_info", "st_shndx"))
        info, shndx = columns.st_info, columns.st_shndx
        per_type = self.own_exports.setdefault(cls, {})
        # Per symbol, 1 + its type when it is defined here (an own export), else 0: the type
        # codes by translate, masked (as integers) by 0xFF where the symbol is defined; then
        # per relocation, by C-level passes, and counted per code.
        types = bytes(info).translate(_TYPE_CODE)
        defined = bytes(map(bool, shndx)).translate(_BYTE_MASK)
        code_of_symbol = bytearray((int.from_bytes(types, "little")
                                    & int.from_bytes(defined, "little")
                                    ).to_bytes(len(types), "little"))
        if code_of_symbol:
            code_of_symbol[0] = 0  # the null symbol is nobody's export
        code_of_symbol.extend(bytes(max(0, max(syms) + 1 - len(code_of_symbol))))
        codes = bytes(pick(code_of_symbol, syms))
        for code in range(1, 17):
            count = codes.count(code)
            if count:
                name = SYMBOL_TYPES[code - 1]
                per_type[name] = per_type.get(name, 0) + count

    def _symbol_kinds(self, table: SectionHeader, needed: int) -> bytearray:
        """Target kind of the first `needed` symbols in the table's linked symbol table (own
        export or not): only those a relocation names are read, not what sh_size claims."""
        cache = self._symbol_kinds_cache
        if table.sh_link in cache and len(cache[table.sh_link]) >= needed:
            return cache[table.sh_link]
        kinds: bytearray
        if table.sh_link == 0 and table.number < 0 and needed > 1:
            # A table found through the dynamic tags alone: its symbols are at DT_SYMTAB.
            shndx = self.elf.dynamic_symbol_sections(needed)
            kinds = _export_kinds(shndx)
        elif table.sh_link == 0:
            kinds = bytearray()
        else:
            symtab = self.elf.section_by_index(table.sh_link, f"relocation section {table.name}")
            entsize = E.SYMBOL_ENTSIZE[self.elf.elf_class]
            self.elf.check_table(symtab, entsize)
            wanted = min(symtab.sh_size, max(needed, len(cache.get(table.sh_link, ()))) * entsize)
            shndx = self.elf.symbol_columns(symtab._replace(sh_size=wanted),
                                            ("st_shndx",)).st_shndx
            kinds = _export_kinds(shndx)
        # Symbol 0 is the null symbol: a symbolic relocation against it is an absolute value.
        if kinds:
            kinds[0] = UNKNOWN
        cache[table.sh_link] = kinds
        return kinds

    def _target_classifier(self) -> Callable[[Sequence[int]], bytes]:
        """A function: addresses -> their target kind codes, from the sections holding them
        (relrocheck/targets.py)."""
        return address_classifier([(s.sh_addr, s.sh_addr + s.sh_size,
                                    self._section_target_kind(s)) for s in self.laid_out],
                                  UNKNOWN)

    def _section_target_kind(self, s: SectionHeader) -> int:
        if s.sh_flags & E.SHF_EXECINSTR:
            return KIND["code"]
        if not s.is_writable:
            return KIND["rodata"]
        if self.in_relro(s):
            return KIND["relro"]
        return KIND["data"]


Columns = Sequence[int]


def _export_kinds(shndx: Sequence[int]) -> bytearray:
    """Per symbol, its target kind: external when undefined (st_shndx 0), else own export."""
    return bytearray(bytes(map(bool, shndx)).translate(_EXPORT_KIND))


def leading_run_python(values: Sequence[int], value: int) -> int:
    """Length of the run of `value` that starts `values` (copies after it are not looked
    for: callers treat the rest entry by entry).

    By comparing the column's bytes with the word's repeated, over 1, 2, 4... words, then
    halving the stretch where the run ends: memcmp passes over about twice the run.
    """
    if not isinstance(values, (array, memoryview)) or values.itemsize not in (4, 8):
        run = 0
        for item in values:
            if item != value:
                break
            run += 1
        return run
    size, n = values.itemsize, len(values)
    if not 0 <= value < 1 << (8 * size):
        return 0
    raw = values.tobytes()
    word = value.to_bytes(size, sys.byteorder)
    good, step = 0, 1
    while good < n:
        take = min(step, n - good)
        if not raw.startswith(word * take, good * size):
            break
        good += take
        step *= 2
    else:
        return n
    bad = good + take  # the first `bad` words are not all `value`
    while bad - good > 1:
        middle = (good + bad) // 2
        if raw.startswith(word * (middle - good), good * size):
            good = middle
        else:
            bad = middle
    return good


# The compiled twin where the install built it (relrocheck/native.py).
leading_run: Callable[[Sequence[int], int], int] = (
    leading_run_python if kernels is None else kernels.leading_run)


def _split_by_class(offsets: Columns, infos: Columns, addends: Columns | None,
                    keys: Sequence[int], class_of_key: dict[int, str], head: int = 0,
                    head_class: str = "relative"
                    ) -> list[tuple[str, Columns, Columns, Columns | None]]:
    """Split a relocation table's columns by relocation class.

    The first `head` entries are known to share one info value of class `head_class` (the
    RELATIVE run that linkers put first, -z combreloc): that run is taken as a view, without
    a copy. `keys` (types, or infos where the class depends on the symbol) are aligned with
    the entries after it, and `class_of_key` gives their classes. The rest is split into
    runs of one class when it has few, else by selectors per class.
    """
    classes = set(class_of_key.values())
    if head:
        classes.add(head_class)
    o, i = _view(offsets), _view(infos)
    a = _view(addends) if addends is not None else None
    if len(classes) == 1:
        return [(classes.pop(), o, i, a)]
    out: list[tuple[str, Columns, Columns, Columns | None]] = []
    if head:
        out.append((head_class, o[:head], i[:head], a[:head] if a is not None else None))
        o, i = o[head:], i[head:]
        a = a[head:] if a is not None else None
    runs: list[tuple[str, int, int]] = []
    position = 0
    for cls, group in groupby(map(class_of_key.__getitem__, keys)):
        length = len(list(group))
        runs.append((cls, position, position + length))
        position += length
        if len(runs) > 64:
            break
    else:
        out.extend((cls, o[lo:hi], i[lo:hi], a[lo:hi] if a is not None else None)
                   for cls, lo, hi in runs)
        return out
    for cls in sorted(set(class_of_key[key] for key in set(keys))):
        wanted = {key for key, c in class_of_key.items() if c == cls}
        selector = list(map(wanted.__contains__, keys))
        chosen = bytes(selector)
        out.append((cls, compressed(o, chosen), compressed(i, chosen),
                    compressed(a, chosen) if a is not None else None))
    return out


def _view(column: Columns) -> Columns:
    return memoryview(column) if isinstance(column, array) else column  # type: ignore[return-value]


def _merge(parts: list[tuple[Sequence[int], bytes]],
           sorted_test: Callable[[Sequence[int]], bool] = is_sorted) -> Table:
    """One sorted table from parts, keeping each offset's kind next to it."""
    if len(parts) == 1:
        offsets, kinds = parts[0]
        if sorted_test(offsets):
            return Table(offsets, kinds)
    keys: list[int] = []
    for offsets, kinds in parts:
        keys.extend(map(operator.add, map(operator.mul, offsets, repeat(8)), kinds))
    keys.sort()
    return Table(list(map(operator.rshift, keys, repeat(3))),
                  bytes(map(operator.and_, keys, repeat(7))))
