"""Measure one ELF file into a `Library`: writable data, relocations, pages, per-symbol cost.

The hot path never builds a Python object per relocation or per symbol of the whole table.
The relocations come as sorted columns per class, each offset's target kind one byte of a
`bytes` aligned with them (relrocheck/reloctables.py). Symbols and section remainders cut
the address space into intervals whose bounds are bisected into the sorted offsets, so cost
grows with relocations only through C-level passes (translate, count, itemgetter, sort, and
integer arithmetic on whole columns, relrocheck/columns.py), and with symbols through one
bisect per bound. Which relative words point to text is relrocheck/stringtargets.py.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from functools import partial
from itertools import compress, repeat
from typing import Sequence

from relrocheck import archtables
from relrocheck import elf as E
from relrocheck.attribution import attribute
from relrocheck.columns import compressed, pick, typecode
from relrocheck.elf import ElfFile, SectionHeader
from relrocheck.errors import ElfError
from relrocheck.model import (
    RELOCATION_CLASSES,
    Library,
    Pages,
    RelocationSummary,
    Section,
    Segment,
    symbol_from_fields,
    unattributed_name,
)
from relrocheck.native import kernels
from relrocheck.reloctables import SYMBOL_TYPES, RelocationReader, Relocations, Table

DEFAULT_PAGE_SIZE = 4096

_SLOT_KIND = ("external", "own_export")  # by whether the slot's symbol is defined here

# Sections of function descriptors, and a descriptor's size in words (entry, TOC, environment).
_DESCRIPTOR_SECTIONS = {".opd": 3}


# st_info and st_other decoded by table lookup: a large library has tens of thousands of
# symbols in writable data. Aliases are ranked GLOBAL, then WEAK, then LOCAL.
_SYMBOL_TYPES = tuple(E.STT_NAMES.get(t, str(t)) for t in range(16))
_BINDINGS = tuple(E.STB_NAMES.get(b, str(b)) for b in range(16))
_VISIBILITIES = tuple(E.STV_NAMES[v] for v in range(4))
_INITIALIZER_PREFIX = b"_GLOBAL__sub_I_"
# Per st_info: whether a symbol of that type can own bytes (SECTION and FILE ones cannot).
_OWNS_BYTES = bytes(int(info & 0xF not in (3, 4)) for info in range(256))
_BINDING_RANK = tuple({"GLOBAL": 0, "WEAK": 1, "GNU_UNIQUE": 1, "LOCAL": 2}.get(b, 3)
                      for b in _BINDINGS)
_BINDING_RANK_BYTES = bytes(_BINDING_RANK)


def measure(path: str, page_size: int = DEFAULT_PAGE_SIZE,
            symbols_from: str | None = None, also_page_sizes: Sequence[int] = (),
            got_slots: bool = True) -> Library:
    """Open, measure and close one ELF file.

    symbols_from: a separate debug file of this very build (the caller checks its build-id)
      whose .symtab names the symbols a stripped library lost.
    also_page_sizes: further page sizes to count pages for (Library.pages_by_size).
    got_slots: name the GOT/PLT slots (Library.got_slots), which a baseline records; else
      None (a tenth of a large library's measurement: a name per imported symbol).
    """
    for size in (page_size, *also_page_sizes):
        if size <= 0 or size & (size - 1):
            raise ValueError(f"page size must be a power of two, not {size}")
    with ElfFile(path) as elf:
        try:
            if symbols_from is None:
                library = _Measurement(elf, page_size, None, also_page_sizes,
                                       got_slots).library()
            else:
                with ElfFile(symbols_from) as debug:
                    library = _Measurement(elf, page_size, debug, also_page_sizes,
                                           got_slots).library()
                    debug.check_unchanged()
            # A file rewritten while it was read gave numbers of neither version.
            elf.check_unchanged()
            return library
        except ElfError as exc:
            if exc.path is None:  # raised by a pure decoder that does not know the file
                exc.path = path
            raise
        except (IndexError, ValueError, OverflowError, MemoryError) as exc:
            # The reader checks every range it is given; what slips through is a table whose
            # contents contradict each other. Report it as the file's fault, in one line.
            raise ElfError(f"malformed ELF file ({type(exc).__name__}: {exc})", path) from None


class _Owner:
    """A stretch of the address space that relocations are attributed to.

    A plain class with slots: one is made per symbol in writable data, tens of thousands in
    a large library.
    """

    __slots__ = ("name", "section", "address", "size", "symbol_type", "binding", "visibility",
                 "aliases", "unattributed")

    def __init__(self, name: str, section: SectionHeader, address: int, size: int,
                 symbol_type: str = "", binding: str = "", visibility: str = "",
                 unattributed: bool = False) -> None:
        self.name = name
        self.section = section
        self.address = address
        self.size = size
        self.symbol_type = symbol_type
        self.binding = binding
        self.visibility = visibility
        self.aliases: tuple[str, ...] = ()
        self.unattributed = unattributed


class _Measurement:
    def __init__(self, elf: ElfFile, page_size: int, symbols: ElfFile | None = None,
                 also_page_sizes: Sequence[int] = (), got_slots: bool = True) -> None:
        self.elf = elf
        self.want_got_slots = got_slots
        self.also_page_sizes = tuple(s for s in dict.fromkeys(also_page_sizes) if s != page_size)
        # Where symbol names come from: the library, or a debug file of the same build.
        self.symbols = symbols if symbols is not None else elf
        self.page_size = page_size
        self.page_shift = page_size.bit_length() - 1
        if elf.e_type not in (E.ET_DYN, E.ET_EXEC):
            kind = E.ET_NAMES.get(elf.e_type, str(elf.e_type))
            hint = " (an object file: check the linked library instead)" if kind == "REL" else ""
            raise elf.fail(f"is an ELF file of type {kind}, not a shared library or "
                           f"executable{hint}")
        arch = archtables.arch_for(elf.e_machine)
        if arch is None:
            supported = ", ".join(sorted(a.key for a in archtables.ARCHES.values()))
            raise elf.fail(f"unsupported machine (e_machine {elf.e_machine}); "
                           f"supported: {supported}")
        self.arch = arch
        # Stripped of its section headers (sstrip): measured through PT_DYNAMIC, attributing
        # to stand-ins cut from the program headers.
        elf.stand_in_if_headerless()
        self.stand_in_sections = elf.sections[0].sh_type == E.SHT_NULL and any(
            s.name.startswith("[PT_LOAD") for s in elf.sections)
        self.alloc = [s for s in elf.sections if s.is_alloc and s.sh_size]
        self.laid_out = elf.laid_out()
        self.relro_range = self._relro_range()
        # Every relocation table, read once; _got_slots reuses its columns.
        self.relocations: Relocations | None = None

    # -- top level -----------------------------------------------------------------------

    def library(self) -> Library:
        elf = self.elf
        dynamic = elf.dynamic()
        tags = dict(dynamic)
        flags, flags_1 = tags.get(E.DT_FLAGS, 0), tags.get(E.DT_FLAGS_1, 0)
        bind_now = (E.DT_BIND_NOW in tags or bool(flags & E.DF_BIND_NOW)
                    or bool(flags_1 & E.DF_1_NOW))
        textrel_flag = E.DT_TEXTREL in tags or bool(flags & E.DF_TEXTREL)

        read = self.relocations = RelocationReader(elf, self.arch, self.laid_out,
                                                   self._in_relro).read()
        tables, by_type, by_table, encodings = (read.tables, read.by_type, read.by_table,
                                                read.encodings)
        no_ops, strings = read.no_ops, read.strings
        owners, bounds, owner_of_bound = self._partition()
        owner_stats, page_set = attribute(tables, bounds, owner_of_bound, self.page_shift)
        symtab = self._symbol_table()
        clusters = ({} if symtab is not None and symtab.sh_type == E.SHT_SYMTAB else
                    self._bucket_clusters(tables, owners, bounds, owner_of_bound))

        section_relocs: Counter[str] = Counter()
        symbols = []
        ranks: list[tuple[int, str]] = []
        shift = self.page_shift
        no_relocations: tuple[dict[str, int], dict[str, int], int, int, tuple[int, ...]] = (
            {}, {}, 0, 0, ())
        for index, owner in enumerate(owners):
            by_class, targets, touched, exclusive, page_numbers = owner_stats.get(
                index, no_relocations)
            count = sum(by_class.values())
            if count:
                section_relocs[owner.section.name] += count
            elif owner.unattributed and (owner.size == 0 or not owner.section.is_writable):
                continue
            address, size = owner.address, owner.size
            span = ((address + size - 1) >> shift) - (address >> shift) + 1 \
                if size > 0 and not owner.unattributed else 0
            ranks.append((_rank(exclusive, touched, count, size), owner.name))
            symbols.append(symbol_from_fields({
                "name": owner.name,
                "section": owner.section.name,
                "address": address,
                "size": size,
                "type": owner.symbol_type,
                "binding": owner.binding,
                "visibility": owner.visibility,
                "relocations": count,
                "by_class": by_class,
                "targets": targets,
                "pages": touched,
                "span_pages": span,
                "aliases": owner.aliases,
                "unattributed": owner.unattributed,
                "demangled": None,
                "source": None,
                "hint": None,
                "pages_exclusive": exclusive,
                "page_addresses": (page_numbers[0] << shift,) if len(page_numbers) == 1 else
                tuple(map(operator.lshift, page_numbers, repeat(shift))),
                "clusters": clusters.get(index, ()),
                "string_targets": strings.count(address, size)
                if targets.get("rodata") and not owner.unattributed else None,
            }))
        outside = owner_stats.get(-1)
        if outside:
            section_relocs["<none>"] += sum(outside[0].values())
        # Pages freed if fixed first, touched pages as the tie-break: a small object straddling a
        # page boundary must not outrank a table that alone owns its pages.
        symbols = list(pick(symbols, sorted(range(len(symbols)), key=ranks.__getitem__)))

        relocated_pages = sorted(page_set)
        sections = self._sections(section_relocs)
        segments, bss_pages = self._segments(relocated_pages)
        pages_by_size = tuple(self._pages_at(size, tables) for size in self.also_page_sizes)
        textrel_sections = tuple(s.name for s in sections if not s.writable and s.relocations)

        class_totals: Counter[str] = Counter()
        for cls, table in tables.items():
            class_totals[cls] += len(table.offsets)
        total = sum(class_totals.values()) + no_ops
        pages = Pages(
            page_size=self.page_size,
            relocated=len(relocated_pages),
            writable_file_backed=sum(s.file_pages for s in segments),
            data_bss_shared=len(bss_pages),
            load_dirty=len(page_set.union(bss_pages)),
            relocated_addresses=tuple(p << self.page_shift for p in relocated_pages),
            zero_filled_addresses=tuple(p << self.page_shift for p in sorted(bss_pages)),
            relocation_counts=counts_per_page(tables, relocated_pages, shift),
        )
        init_entries = sum(s.sh_size // elf.word_size for s in elf.sections
                           if s.sh_type in (E.SHT_INIT_ARRAY, E.SHT_PREINIT_ARRAY))
        if self.stand_in_sections:
            init_entries = (tags.get(E.DT_INIT_ARRAYSZ, 0)
                            + tags.get(E.DT_PREINIT_ARRAYSZ, 0)) // elf.word_size
        interp = any(p.p_type == E.PT_INTERP for p in elf.segments)
        return Library(
            path=elf.path,
            soname=elf.soname(),
            file_type=E.ET_NAMES[elf.e_type],
            # A PIE says so in DF_1_PIE; older linkers leave only its interpreter. A shared
            # library with an interpreter too (libc.so.6 runs as a program) has a SONAME.
            pie=elf.e_type == E.ET_DYN and (bool(flags_1 & E.DF_1_PIE)
                                            or (interp and E.DT_SONAME not in tags)),
            machine=self.arch.key,
            elf_class=elf.elf_class,
            endian=elf.endian,
            word_size=elf.word_size,
            page_size=self.page_size,
            max_page_size=max((p.p_align for p in elf.segments if p.p_type == E.PT_LOAD),
                              default=0),
            file_size=elf.file_size,
            build_id=elf.build_id(),
            sections=tuple(sections),
            segments=tuple(segments),
            relro_range=self.relro_range,
            relro="none" if self.relro_range is None else ("full" if bind_now else "partial"),
            bind_now=bind_now,
            textrel=textrel_flag or bool(textrel_sections),
            textrel_sections=textrel_sections,
            init_array_entries=init_entries,
            has_dt_init=E.DT_INIT in tags,
            static_initializers=init_entries + (1 if E.DT_INIT in tags else 0),
            relocations=RelocationSummary(
                total=total,
                by_type=dict(sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
                by_class={c: class_totals[c] for c in RELOCATION_CLASSES if class_totals[c]},
                by_table=dict(by_table),
                by_section=dict(sorted(((k, v) for k, v in section_relocs.items() if v),
                                       key=lambda kv: (-kv[1], kv[0]))),
                encodings=encodings,
                no_ops=no_ops,
                notes=read.notes,
            ),
            pages=pages,
            symbols=tuple(symbols),
            symbol_table=symtab.name if symtab is not None else None,
            symbols_from=None if self.symbols is elf else self.symbols.path,
            has_debug_info=elf.has_debug_info(),
            pages_by_size=pages_by_size,
            own_export_relocations={cls: dict(sorted(types.items()))
                                    for cls, types in sorted(read.own_exports.items())},
            initializers=self._initializers(symtab),
            got_slots=self._got_slots() if self.want_got_slots else None,
            build_comment=self._comment(),
        )

    def _bucket_clusters(self, tables: dict[str, Table], owners: list[_Owner],
                         bounds: list[int], owner_of: list[int]) -> dict[int, tuple]:
        """Probable objects in each data/relro bucket of a stripped library (cluster.py).

        The bucket's words are gathered from every class table by bisecting its intervals,
        merged by address as offset*8+kind keys (as the relocation reader's merge does), then
        cut into runs.
        """
        from relrocheck.cluster import find_clusters

        # The buckets of data and relro sections, each asked once (not once per interval).
        buckets = {index for index, owner in enumerate(owners) if owner.unattributed
                   and _section_kind(owner.section, self._in_relro(owner.section))
                   in ("data", "relro")}
        ranges: dict[int, list[tuple[int, int]]] = {}
        ends = bounds[1:] + [1 << 64]
        for start, end, index in zip(bounds, ends, owner_of):
            if index in buckets:
                ranges.setdefault(index, []).append((start, end))
        out: dict[int, tuple] = {}
        for index, spans in ranges.items():
            # Per table, the bucket's words as slices (views of sorted columns, no copies of
            # single words): a bucket is usually one interval, at most one per symbol.
            parts = []
            for table in tables.values():
                offsets, kinds = table.offsets, table.kinds
                slices = [(lo, hi) for lo, hi in
                          ((bisect_left(offsets, start), bisect_left(offsets, end))
                           for start, end in spans) if lo < hi]
                if len(slices) == 1:
                    lo, hi = slices[0]
                    parts.append((offsets[lo:hi], kinds[lo:hi]))
                elif slices:
                    # The intervals ascend: their slices joined stay sorted (as bytes for a
                    # column of words, one memcpy each).
                    if isinstance(offsets, (array, memoryview)):
                        column = array(typecode(offsets), b"".join(
                            offsets[lo:hi].tobytes() for lo, hi in slices))
                    else:
                        column = array("Q")
                        for lo, hi in slices:
                            column.extend(offsets[lo:hi])
                    parts.append((column, b"".join(kinds[lo:hi] for lo, hi in slices)))
            found = find_clusters(parts, self.elf.word_size)
            if found:
                out[index] = tuple(sorted(found, key=lambda c: (-c.words, c.address)))
        return out

    def _initializers(self, symtab: SectionHeader | None) -> dict[str, int]:
        """Code bytes of each translation unit's static initializer, by unit name.

        GCC and clang name a unit's initializer `_GLOBAL__sub_I_<file>` (its cold part
        `.cold`): a new global with a constructor in a unit that already had one adds no
        .init_array entry, only code here. Found by searching the string table for the
        prefix, so the cost grows with the initializers, not with the symbol table.
        """
        if symtab is None or symtab.sh_type != E.SHT_SYMTAB:
            return {}
        source = self.symbols
        strtab, *_ = source.symbol_columns(symtab, ())
        names = source.section_bytes(strtab)
        starts = []
        position = names.find(_INITIALIZER_PREFIX)
        while position >= 0:
            starts.append(position)
            position = names.find(_INITIALIZER_PREFIX, position + 1)
        if not starts:
            return {}
        wanted = set(starts)
        columns = source.symbol_columns(symtab, ("st_name", "st_size", "st_info"))
        out: dict[str, int] = {}
        for index in compress(range(len(columns.st_name)),
                              map(wanted.__contains__, columns.st_name)):
            if columns.st_info[index] & 0xF != 2:  # STT_FUNC
                continue
            offset = columns.st_name[index]
            end = names.find(b"\0", offset)
            name = names[offset + len(_INITIALIZER_PREFIX):end if end >= 0 else len(names)]
            unit = name.decode("utf-8", "replace").removesuffix(".cold")
            out[unit] = out.get(unit, 0) + columns.st_size[index]
        return dict(sorted(out.items()))

    def _comment(self) -> tuple[str, ...]:
        """The toolchain's `.comment` strings ("GCC: (Debian 12.2.0-14) 12.2.0", "clang
        version 14.0.6", "Linker: LLD ..."): the build configuration a baseline records.
        At most 4 KiB are read, 8 strings of 200 characters kept, control characters dropped."""
        elf = self.elf
        section = next((s for s in elf.sections if s.name == ".comment"
                        and s.sh_type == E.SHT_PROGBITS), None)
        if section is None or section.sh_size == 0:
            return ()
        try:
            raw = elf.read_at(section.sh_offset, min(section.sh_size, 4096))
        except ElfError:
            return ()  # a broken .comment says nothing about relocations
        out: list[str] = []
        for part in bytes(raw).split(b"\0"):
            text = "".join(c for c in part.decode("utf-8", "replace") if c.isprintable())[:200]
            if text and text not in out:
                out.append(text)
        return tuple(out[:8])

    def _got_slots(self) -> tuple[tuple[str, str, str], ...]:
        """(symbol, external | own_export, section) of every GOT/PLT slot a symbolic or PLT
        relocation fills, sorted: one row per import or own export, so that a reviewer sees
        which slot a count moved by. Relocation columns are read in bulk; the RELATIVE run
        linkers put first is skipped, and rows exist only per slot."""
        elf = self.elf
        got = [(s.sh_addr, s.sh_addr + s.sh_size, s.name) for s in self.alloc
               if s.is_writable and s.name in (".got", ".got.plt")]
        slot_types: set[int] | None = None
        if not got and self.stand_in_sections:
            # Without section headers the GOT's range is unknown: its slots are the words
            # GLOB_DAT and JUMP_SLOT relocations fill (those types write nowhere else), in
            # whichever writable stand-in holds them.
            slot_types = {number for number, (name, _) in self.arch.types.items()
                          if name.endswith(("_GLOB_DAT", "_JUMP_SLOT", "_JMP_SLOT"))}
            got = [(s.sh_addr, s.sh_addr + s.sh_size, s.name) for s in self.alloc
                   if s.is_writable]
        if not got:
            return ()
        shift, type_mask = (32, 0xFFFFFFFF) if elf.word_size == 8 else (8, 0xFF)
        slots: dict[int, dict[int, str]] = {}  # symbol table -> symbol index -> section
        assert self.relocations is not None  # read by library() first
        for link, offsets, infos, head in self.relocations.symbol_columns:
            if link == 0 or head == len(infos):
                continue
            offs, infs = offsets[head:], infos[head:]
            in_table = slots.setdefault(link, {})
            for lo, hi, name in got:
                # C-level passes: the entries whose target lies in this GOT section.
                inside = map(operator.and_, map(lo.__le__, offs), map(hi.__gt__, offs))
                if slot_types is not None:
                    inside = map(operator.and_, inside, map(
                        slot_types.__contains__, map(operator.and_, infs, repeat(type_mask))))
                indices = set(map(operator.rshift, compress(infs, inside), repeat(shift)))
                indices.discard(0)
                # A slot is named after the first section it was found in.
                in_table.update(dict.fromkeys(indices.difference(in_table), name))
        rows: set[tuple[str, str, str]] = set()
        entsize = E.SYMBOL_ENTSIZE[elf.elf_class]
        for link, section_of in slots.items():
            if not section_of:
                continue
            symtab = elf.section_by_index(link, "relocation section")
            # Only the symbols the slots name are read, not what sh_size claims.
            wanted = min(symtab.sh_size, (max(section_of) + 1) * entsize)
            columns = elf.symbol_columns(symtab._replace(sh_size=wanted), ("st_name", "st_shndx"))
            # Indices past the table were reported by the relocation reader already.
            present = [index for index in section_of if index < len(columns.st_name)]
            names = elf.names_at(columns.strtab, list(map(columns.st_name.__getitem__, present)))
            kinds = map(_SLOT_KIND.__getitem__, map(bool, map(columns.st_shndx.__getitem__,
                                                              present)))
            rows.update(zip(names, kinds, map(section_of.__getitem__, present)))
        return tuple(sorted(rows))

    # -- relocations ---------------------------------------------------------------------

    # -- symbols and attribution -----------------------------------------------------------

    def _symbol_table(self) -> SectionHeader | None:
        for sh_type in (E.SHT_SYMTAB, E.SHT_DYNSYM):
            for s in self.symbols.sections:
                if s.sh_type == sh_type and s.sh_size and s.has_file_bytes:
                    return s
        return None

    def _tls_base(self) -> int:
        return next((p.p_vaddr for p in self.elf.segments if p.p_type == E.PT_TLS), 0)

    def _writable_symbols(self) -> list[_Owner]:
        """Symbols with bytes in writable sections; aliases folded into one owner."""
        elf = self.elf
        symtab = self._symbol_table()
        if symtab is None:
            return []
        source = self.symbols
        writable = {s.number: s for s in elf.sections if s.is_alloc and s.is_writable}
        if self.stand_in_sections:
            # The symbols' sections are gone (in a debug file too): placed by address.
            strtab, *columns = source.symbol_columns(symtab)
            columns[5] = self._stand_in_numbers(columns[1], columns[3], columns[5], writable)
        else:
            if source is not elf:
                # A debug file keeps the section headers (as NOBITS): matched by name.
                by_name = {s.name: s for s in writable.values()}
                writable = {s.number: by_name[s.name] for s in source.sections
                            if s.name in by_name}
            strtab, *columns = source.symbol_columns(symtab, sections=writable)
        # SECTION and FILE symbols and those of no size own no bytes: dropped by C-level
        # passes, so that only the kept ones are decoded and looped over.
        keep = bytes(map(operator.and_, map(bool, columns[2]),
                         map(_OWNS_BYTES.__getitem__, columns[3])))
        if self.stand_in_sections:
            keep = bytes(map(operator.and_, keep, map(bool, columns[5])))
        if 0 in keep:
            columns = [compressed(column, keep) for column in columns]
        name_offsets, values, sizes, infos, others, shndxs = columns
        names = source.names_at(strtab, name_offsets)
        tls_base = self._tls_base()
        owners = self._fold_compiled(names, values, sizes, infos, others, shndxs, writable,
                                     tls_base)
        if owners is not None:
            return owners
        return self._fold_python(names, values, sizes, infos, others, shndxs, writable,
                                 tls_base)

    def _fold_compiled(self, names: list[str], values: Sequence[int], sizes: Sequence[int],
                       infos: Sequence[int], others: Sequence[int], shndxs: Sequence[int],
                       writable: dict[int, SectionHeader], tls_base: int
                       ) -> list[_Owner] | None:
        """`_fold_python` by the compiled fold_symbols; None where that is the path: no
        kernels, function descriptors (.opd), or an address past 64 bits (a crafted file,
        whose sums Python's ints carry on)."""
        if kernels is None or any(s.name in _DESCRIPTOR_SECTIONS for s in writable.values()):
            return None
        # One number per section object (a debug file's sections map to the library's by
        # name, several numbers to one section).
        numbers: dict[int, int] = {}
        section_number = {index: numbers.setdefault(id(s), len(numbers))
                          for index, s in writable.items()}
        try:
            folded = kernels.fold_symbols(values, sizes, infos, others, shndxs,
                                          array("I", map(section_number.__getitem__, shndxs)),
                                          names, tls_base, _BINDING_RANK_BYTES)
        except OverflowError:
            return None
        owners = []
        for index, address, aliases in folded:
            info = infos[index]
            owner = _Owner(names[index], writable[shndxs[index]], address, sizes[index],
                           SYMBOL_TYPES[info & 0xF], _BINDINGS[info >> 4],
                           _VISIBILITIES[others[index] & 0x3])
            owner.aliases = aliases
            owners.append(owner)
        return owners

    def _fold_python(self, names: list[str], values: Sequence[int], sizes: Sequence[int],
                     infos: Sequence[int], others: Sequence[int], shndxs: Sequence[int],
                     writable: dict[int, SectionHeader], tls_base: int) -> list[_Owner]:
        """The symbols folded into owners, in address order (the compiled fold_symbols'
        twin, and the only path for function descriptors): aliases, and symbols nested
        in the one before them, named by the owner of their bytes."""
        elf = self.elf
        candidates = []
        for value, size, info, other, shndx, name in zip(values, sizes, infos, others, shndxs,
                                                         names):
            stype = info & 0xF
            address = value + (tls_base if stype == E.STT_TLS else 0)
            if stype == 2 and writable[shndx].name in _DESCRIPTOR_SECTIONS:
                # PowerPC64 ELFv1: a function symbol names its descriptor in .opd but carries
                # the size of its code; the descriptor is what holds relocated words.
                size = min(size, _DESCRIPTOR_SECTIONS[writable[shndx].name] * elf.word_size)
            # Sorted as tuples: by address, the largest first, GLOBAL before WEAK before LOCAL.
            candidates.append((address, -size, _BINDING_RANK[info >> 4], name, info, other,
                               shndx))
        candidates.sort()
        owners: list[_Owner] = []
        for address, negative_size, _rank, name, info, other, shndx in candidates:
            size = -negative_size
            section = writable[shndx]
            last = owners[-1] if owners else None
            if (last is not None and last.section is section
                    and address + size <= last.address + last.size):
                # Same bytes under another name, or a symbol nested inside a bigger one: the
                # first (largest, global) owns the relocations, the others are aliases. A
                # symbol that only starts inside the one before it (glibc's sys_sigabbrev in
                # _sys_errlist's last word) is its own owner, of the bytes past that one.
                last.aliases += (name,)
                continue
            # Positional: keywords cost a third more, on tens of thousands of symbols.
            owners.append(_Owner(name, section, address, size, SYMBOL_TYPES[info & 0xF],
                                 _BINDINGS[info >> 4], _VISIBILITIES[other & 0x3]))
        return owners

    def _stand_in_numbers(self, values: Sequence[int], infos: Sequence[int],
                          shndx: Sequence[int], writable: dict[int, SectionHeader]) -> array:
        """For a file without section headers: per symbol, the writable stand-in holding its
        address (0 for none), in place of its st_shndx, which numbers sections the file no
        longer describes. Undefined and absolute symbols hold no bytes of it."""
        spans = sorted((s.sh_addr, s.sh_addr + s.sh_size, s.number) for s in writable.values())
        starts = [start for start, _, _ in spans]
        tls_base = self._tls_base()
        numbers = array("I")
        for value, info, index in zip(values, infos, shndx):
            if index == E.SHN_UNDEF or index >= E.SHN_LORESERVE:
                numbers.append(0)
                continue
            address = value + (tls_base if info & 0xF == E.STT_TLS else 0)
            at = bisect_right(starts, address) - 1
            numbers.append(spans[at][2] if at >= 0 and address < spans[at][1] else 0)
        return numbers

    def _partition(self) -> tuple[list[_Owner], list[int], list[int]]:
        """Cut the address space into owner intervals.

        Returns the owners, the sorted interval starts, and for each interval the index of its
        owner (-1 for addresses in no allocated section).
        """
        symbols = self._writable_symbols()
        by_section: dict[int, list[_Owner]] = {}
        for owner in symbols:
            by_section.setdefault(owner.section.number, []).append(owner)
        owners: list[_Owner] = []
        bounds: list[int] = [0]
        owner_of: list[int] = [-1]

        def cut(address: int, owner_index: int) -> None:
            if bounds[-1] == address:
                owner_of[-1] = owner_index
            elif address > bounds[-1]:
                bounds.append(address)
                owner_of.append(owner_index)

        cursor = 0
        for section in self.laid_out:
            start, end = section.sh_addr, section.sh_addr + section.sh_size
            if start < cursor:
                start = cursor  # overlapping sections: the earlier one keeps the bytes
            if end <= start:
                continue
            if start > cursor:
                cut(cursor, -1)
            bucket = len(owners)
            owners.append(_Owner(name=unattributed_name(section.name), section=section,
                                 address=section.sh_addr, size=0, unattributed=True))
            covered = 0
            position = start
            for owner in by_section.get(section.number, ()):
                o_start = max(owner.address, position)
                o_end = min(owner.address + owner.size, end)
                if o_end <= o_start:
                    continue
                if o_start > position:
                    cut(position, bucket)
                cut(o_start, len(owners))
                owners.append(owner)
                covered += o_end - o_start
                position = o_end
            if position < end:
                cut(position, bucket)
            if section.has_file_bytes or section.is_writable:
                owners[bucket].size = (end - start) - covered
            cursor = end
        cut(cursor, -1)
        # Symbols that could not be placed (e.g. all of .tbss) are still listed, with no
        # relocations: they cost zero-fill memory only.
        placed = {id(o) for o in owners}
        for owner in symbols:
            if id(owner) not in placed:
                owners.append(owner)
        return owners, bounds, owner_of

    # -- pages, sections, segments ---------------------------------------------------------

    def _relro_range(self) -> tuple[int, int] | None:
        for p in self.elf.segments:
            if p.p_type == E.PT_GNU_RELRO:
                return (p.p_vaddr, p.p_vaddr + p.p_memsz)
        return None

    def _in_relro(self, s: SectionHeader) -> bool:
        r = self.relro_range
        return r is not None and r[0] <= s.sh_addr and s.sh_addr + s.sh_size <= r[1]

    def _sections(self, section_relocs: Counter[str]) -> list[Section]:
        out = []
        for s in self.alloc:
            if not s.is_writable and not section_relocs.get(s.name):
                continue
            in_relro = self._in_relro(s)
            out.append(Section(
                name=s.name,
                type=s.type_name,
                kind=_section_kind(s, in_relro),
                address=s.sh_addr,
                size=s.sh_size,
                file_backed=s.has_file_bytes,
                writable=s.is_writable,
                in_relro=in_relro,
                relocations=section_relocs.get(s.name, 0),
            ))
        return out

    def _pages_at(self, page_size: int, tables: dict[str, Table]) -> Pages:
        """The page counts at another page size, from the relocation offsets themselves."""
        shift = page_size.bit_length() - 1
        page_set: set[int] = set()
        for table in tables.values():
            page_set.update(map(operator.rshift, table.offsets, repeat(shift)))
        relocated = sorted(page_set)
        segments, bss_pages = self._segments(relocated, shift)
        return Pages(
            page_size=page_size,
            relocated=len(relocated),
            writable_file_backed=sum(s.file_pages for s in segments),
            data_bss_shared=len(bss_pages),
            load_dirty=len(page_set.union(bss_pages)),
            relocated_addresses=tuple(p << shift for p in relocated),
            zero_filled_addresses=tuple(p << shift for p in sorted(bss_pages)),
        )

    def _segments(self, relocated_pages: list[int], shift: int | None = None
                  ) -> tuple[list[Segment], set[int]]:
        shift = self.page_shift if shift is None else shift
        page_size = 1 << shift
        segments, bss_pages = [], set()
        for p in self.elf.segments:
            if p.p_type != E.PT_LOAD or not p.p_flags & E.PF_W:
                continue
            first = p.p_vaddr >> shift
            file_end = p.p_vaddr + p.p_filesz
            file_pages = ((file_end - 1) >> shift) - first + 1 if p.p_filesz else 0
            mem_end_page = ((p.p_vaddr + max(p.p_memsz, 1) - 1) >> shift)
            relocated = (bisect_right(relocated_pages, mem_end_page)
                         - bisect_left(relocated_pages, first))
            if p.p_memsz > p.p_filesz and p.p_filesz and file_end & (page_size - 1):
                # The loader zero-fills the tail of the last file page where .bss begins.
                bss_pages.add(file_end >> shift)
            segments.append(Segment(p.p_vaddr, p.p_filesz, p.p_memsz, p.p_align, file_pages,
                                    relocated))
        return segments, bss_pages


def _rank(pages_exclusive: int, pages: int, relocations: int, size: int) -> int:
    """One integer that sorts as (-pages_exclusive, -pages, -relocations, -size): a 64-bit
    field each, every value below 2**64 (ELF sizes are 64-bit words), so that the ranking
    compares one int and then the name, not a tuple of five."""
    top = (1 << 64) - 1
    return ((((top - pages_exclusive) << 64 | (top - pages)) << 64 | (top - relocations)) << 64
            | (top - size))


def _section_kind(s: SectionHeader, in_relro: bool) -> str:
    if not s.is_writable:
        return "readonly"
    if s.is_tls:
        return "tls" if s.has_file_bytes else "tbss"
    if not s.has_file_bytes:
        return "bss"
    if s.name.startswith(".got"):
        return "got"
    if s.sh_type in (E.SHT_INIT_ARRAY, E.SHT_FINI_ARRAY, E.SHT_PREINIT_ARRAY):
        return "init"
    if s.sh_type == E.SHT_DYNAMIC:
        return "dynamic"
    return "relro" if in_relro else "data"


def counts_per_page(tables: dict[str, Table], pages: list[int], shift: int
                    ) -> tuple[int, ...]:
    """Relocations on each of the sorted `pages` (relocated page numbers), from the sorted
    offsets of every table."""
    if kernels is None:
        return counts_per_page_python(tables, pages, shift)
    return kernels.page_counts([t.offsets for t in tables.values()], pages, shift)  # type: ignore[no-any-return]


def counts_per_page_python(tables: dict[str, Table], pages: list[int], shift: int
                           ) -> tuple[int, ...]:
    """`counts_per_page` in Python, the compiled kernel's twin: one bisection per page
    boundary, and only for the pages a table's offsets span."""
    counts = [0] * len(pages)
    for table in tables.values():
        offsets = table.offsets
        if not len(offsets):
            continue
        first = bisect_left(pages, offsets[0] >> shift)
        last = bisect_right(pages, offsets[-1] >> shift)
        if first >= last:
            continue
        span = pages[first:last]
        # Each page's start, and the end of a page not followed by the next one.
        boundaries = sorted({*(p << shift for p in span), *((p + 1) << shift for p in span)})
        edge = dict(zip(boundaries, map(partial(bisect_left, offsets), boundaries)))
        for i, page in enumerate(span, first):
            counts[i] += edge[(page + 1) << shift] - edge[page << shift]
    return tuple(counts)
