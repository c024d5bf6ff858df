"""Every relocated word of one symbol: where it is, what the loader writes there, which page.

`measure` keeps per-symbol totals only; explaining one symbol reads its relocations again
from the file, restricted to the symbol's address range, and names what each word points
to: a symbol+addend, the string when the target is a string in read-only data, or a section
offset. One Python object per word of one symbol is fine here; the whole-table passes stay
C-level (array columns filtered with compress).
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import compress

from relrocheck import archtables
from relrocheck import elf as E
from relrocheck.elf import ElfFile, SectionHeader, SymbolColumns
from relrocheck.model import Library, Symbol
from relrocheck.record import record

_MAX_STRING = 80
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # not text: binary data that ends in a NUL


@record
class Target:
    """What a relocated word points to, as far as the file tells."""

    address: int | None  # None when resolved in another object (external, TLS)
    symbol: str | None  # the symbol containing the address, or the relocation's symbol
    addend: int  # offset from `symbol` (or, without a symbol, from the section)
    section: str | None
    string: str | None  # the NUL-terminated string there, when in read-only data
    external: bool = False  # the relocation's symbol is undefined here: another library's


@record
class RelocatedWord:
    address: int  # r_offset: the address the loader writes
    offset: int  # address - symbol address
    page: int  # page-aligned address
    type: str  # the architecture's relocation type name (RELR entries: its RELATIVE type)
    cls: str  # model.RELOCATION_CLASSES
    table: str  # relocation section it comes from
    target: Target


@record(frozen=False)
class _SymbolTable:
    """Defined symbols with a size, sorted by address, to name what a word points to."""

    starts: list[int]
    ends: list[int]
    names: list[str]

    def containing(self, address: int) -> tuple[str, int] | None:
        i = bisect_right(self.starts, address) - 1
        # Nested symbols: look back a few entries for one whose range still covers it.
        for j in range(i, max(i - 8, -1), -1):
            if self.starts[j] <= address < self.ends[j]:
                return self.names[j], address - self.starts[j]
        return None


def symbol_ranges(lib: Library, symbol: Symbol) -> list[tuple[int, int]]:
    """Address ranges whose words belong to `symbol`; for an unattributed bucket, its
    section minus every symbol placed in it."""
    if not symbol.unattributed:
        # A symbol that starts inside the one before it owns only the bytes past that one,
        # as the measurement attributes them.
        start, end = symbol.address, symbol.address + symbol.size
        for other in lib.symbols:
            if (other.section == symbol.section and not other.unattributed
                    and other.address < symbol.address < other.address + other.size < end):
                start = max(start, other.address + other.size)
        return [(start, end)]
    section = next((s for s in lib.sections if s.name == symbol.section), None)
    if section is None:
        return []
    cursor, end = section.address, section.address + section.size
    ranges = []
    owned = sorted((s.address, s.address + s.size) for s in lib.symbols
                   if s.section == symbol.section and not s.unattributed and s.size)
    for start, stop in owned:
        if start > cursor:
            ranges.append((cursor, min(start, end)))
        cursor = max(cursor, stop)
    if cursor < end:
        ranges.append((cursor, end))
    return ranges


def relocated_words(path: str, lib: Library, symbol: Symbol) -> list[RelocatedWord]:
    """The dynamic relocations whose target word lies in `symbol`, by address."""
    ranges = symbol_ranges(lib, symbol)
    if not ranges:
        return []
    shift = lib.page_size.bit_length() - 1
    with ElfFile(path) as elf:
        arch = archtables.arch_for(elf.e_machine)
        if arch is None:
            raise elf.fail(f"unsupported machine (e_machine {elf.e_machine})")
        # The same stand-in sections and dynamic symbols as the measurement used.
        elf.stand_in_if_headerless()
        reader = _Reader(elf, arch)
        words = []
        for address, type_name, cls, table, sym_index, addend, symtab in reader.relocations(
                ranges):
            words.append(RelocatedWord(
                address=address,
                offset=address - symbol.address,
                page=(address >> shift) << shift,
                type=type_name,
                cls=cls,
                table=table,
                target=reader.target(cls, sym_index, addend, symtab),
            ))
    words.sort(key=lambda w: (w.address, w.table))
    return words


class _Reader:
    def __init__(self, elf: ElfFile, arch: archtables.Arch) -> None:
        self.elf = elf
        self.arch = arch
        self._symtabs: dict[int, SymbolColumns] = {}
        self._named: _SymbolTable | None = None
        self._layout: tuple[list[int], list[SectionHeader]] | None = None

    # -- relocations in a range ----------------------------------------------------------------

    def relocations(self, ranges: Sequence[tuple[int, int]]):
        """(address, type name, class, table name, symbol index, addend, symbol table) of
        each relocation whose address lies in one of `ranges`, and of each MIPS GOT entry
        there (written by the loader without a record, counted as a relocation)."""
        elf, arch = self.elf, self.arch
        word = elf.word_size
        starts = [r[0] for r in ranges]
        relative_name = arch.type_name(arch.relative_type)

        def inside(address: int) -> bool:
            i = bisect_right(starts, address) - 1
            return i >= 0 and address < ranges[i][1]

        lo, hi = ranges[0][0], ranges[-1][1]
        for found in elf.relocation_tables():
            table = found.header
            # Records in holes of a sparse file are R_*_NONE: left unread, they write nothing.
            offsets, infos, addend_column = elf.read_relocations(found, [])
            if infos is None:  # RELR
                picked = [a for a in _in_span(offsets, lo, hi) if inside(a)]
                for address, stored in zip(picked, elf.stored_words(picked)):
                    yield address, relative_name, "relative", table.name, 0, stored, None
                continue
            index = [i for i in compress(range(len(offsets)),
                                         map(operator.and_, map(lo.__le__, offsets),
                                             map(hi.__gt__, offsets)))
                     if inside(offsets[i])]
            if not index:
                continue
            shift, mask = (32, 0xFFFFFFFF) if word == 8 else (8, 0xFF)
            if addend_column is not None:
                addends = [_signed(addend_column[i], word) for i in index]
            else:
                addends = elf.stored_words([offsets[i] for i in index])
            symtab = table.sh_link if table.sh_link else None
            for i, addend in zip(index, addends):
                kind, sym_index = infos[i] & mask, infos[i] >> shift
                if kind:  # R_*_NONE writes nothing
                    yield (offsets[i], arch.type_name(kind),
                           arch.relocation_class(kind, sym_index), table.name, sym_index,
                           addend, symtab)
        yield from self._mips_got_entries(lo, hi, inside)

    def _mips_got_entries(self, lo: int, hi: int, inside):
        """The MIPS GOT entries in [lo, hi) that `inside` accepts, as `relocations` gives
        them: a local entry is its stored word plus the load bias (relative), a global one
        the address of its dynamic symbol (symbolic)."""
        elf = self.elf
        got = elf.mips_got()
        if got is None:
            return
        local = [a for a in _in_span(got.local_entries, lo, hi) if inside(a)]
        for address, stored in zip(local, elf.stored_words(local)):
            yield address, E.MIPS_GOT_LOCAL, "relative", got.name, 0, stored, None
        dynsym = next((s.number for s in elf.sections if s.sh_type == E.SHT_DYNSYM), None)
        entries = got.global_entries
        for address in _in_span(entries, lo, hi):
            if inside(address):
                index = got.first_global + entries.index(address)
                yield address, E.MIPS_GOT_GLOBAL, "symbolic", got.name, index, 0, dynsym

    # -- what a word points to -----------------------------------------------------------------

    def target(self, cls: str, sym_index: int, addend: int, symtab: int | None) -> Target:
        if cls in ("symbolic", "plt", "tls", "copy") and sym_index and symtab is not None:
            name, value, defined = self._symbol(symtab, sym_index)
            if cls == "tls" or not defined:
                return Target(None, name, addend, None, None, external=not defined)
            return self._describe(value + addend, name, addend)
        if cls in ("relative", "irelative"):
            return self._describe(addend)
        if cls == "tls":
            return Target(None, None, addend, None, None)  # the module's own TLS block
        return Target(addend if addend else None, None, addend, None, None)

    def _describe(self, address: int, symbol: str | None = None,
                  addend: int | None = None) -> Target:
        section = self._section_at(address)
        string = None
        if section is not None and not section.is_writable and not (
                section.sh_flags & E.SHF_EXECINSTR) and section.has_file_bytes:
            string = self._string_at(section, address)
        if symbol is None:
            found = self._symbols().containing(address)
            if found is not None:
                symbol, addend = found
            elif section is not None:
                addend = address - section.sh_addr
        return Target(address, symbol, addend or 0, section.name if section else None, string)

    def _section_at(self, address: int) -> SectionHeader | None:
        if self._layout is None:
            laid = self.elf.laid_out()
            self._layout = ([s.sh_addr for s in laid], laid)
        starts, laid = self._layout
        i = bisect_right(starts, address) - 1
        if i >= 0 and address < laid[i].sh_addr + laid[i].sh_size:
            return laid[i]
        return None

    def _string_at(self, section: SectionHeader, address: int) -> str | None:
        """The printable NUL-terminated string at `address`, if one starts there."""
        offset = section.sh_offset + address - section.sh_addr
        end = section.sh_offset + section.sh_size
        raw = self.elf.read_at(offset, min(_MAX_STRING + 1, end - offset))
        nul = raw.find(b"\0")
        if nul < 0 and len(raw) <= _MAX_STRING:
            return None  # runs off the section: not a C string
        return _printable(raw[:nul if nul >= 0 else _MAX_STRING + 1].decode("utf-8", "replace"))

    def _columns(self, index: int):
        columns = self._symtabs.get(index)
        if columns is None:
            symtab = self.elf.section_by_index(index, "relocation section")
            columns = self.elf.symbol_columns(symtab)
            self._symtabs[index] = columns
        return columns

    def _symbol(self, symtab: int, index: int) -> tuple[str, int, bool]:
        strtab, names, values, _sizes, _infos, _others, shndx = self._columns(symtab)
        if index >= len(names):
            raise self.elf.fail(f"relocation symbol index {index} is past its symbol table")
        return self.elf.string_at(strtab, names[index]), values[index], shndx[index] != E.SHN_UNDEF

    def _symbols(self) -> _SymbolTable:
        """Every defined, sized, non-TLS symbol of .symtab (else .dynsym), by address."""
        if self._named is None:
            table = next((s for t in (E.SHT_SYMTAB, E.SHT_DYNSYM) for s in self.elf.sections
                          if s.sh_type == t and s.sh_size), None)
            rows: list[tuple[int, int, int]] = []
            if table is not None:
                strtab, names, values, sizes, infos, _others, shndx = self._columns(table.number)
                for i in range(1, len(names)):
                    kind = infos[i] & 0xF
                    if sizes[i] and shndx[i] != E.SHN_UNDEF and kind not in (3, 4, E.STT_TLS):
                        rows.append((values[i], values[i] + sizes[i], i))
                rows.sort()
                named = [(start, end, self.elf.string_at(strtab, names[i]))
                         for start, end, i in rows]
            else:
                named = []
            self._named = _SymbolTable([r[0] for r in named], [r[1] for r in named],
                                       [r[2] for r in named])
        return self._named


def _in_span(addresses: Sequence[int], lo: int, hi: int) -> list[int]:
    return list(compress(addresses, map(operator.and_, map(lo.__le__, addresses),
                                        map(hi.__gt__, addresses))))


def _signed(value: int, word: int) -> int:
    bits = 8 * word
    return value - (1 << bits) if value >> (bits - 1) else value


def _printable(text: str) -> str | None:
    if _CONTROL.search(text):
        return None
    if len(text) > _MAX_STRING:
        text = text[:_MAX_STRING] + "..."
    return text
