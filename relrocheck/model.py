"""The measured library: one typed, immutable data model shared by every command.

The ELF reader and `measure` produce a `Library`; policy checks, baseline diffs, hints,
renderers and the tree scan only consume it. Nothing downstream reopens the ELF file, so
whatever a consumer needs (per-symbol relocation classes, targets, pages) is measured here.

Addresses are virtual addresses as linked (the load bias is page aligned, so page numbers
computed from them are the pages the loader writes).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

from relrocheck.record import field, record

# Relocation classes, in the order reports list them. Each architecture's type numbers map to
# one of these in `archtables`.
RELOCATION_CLASSES: Tuple[str, ...] = (
    "relative",  # base + addend, no symbol lookup (includes every RELR entry)
    "symbolic",  # needs a symbol lookup at load time (R_X86_64_64, GLOB_DAT, ...)
    "plt",  # JUMP_SLOT: written into .got.plt, at load or lazily on first call
    "irelative",  # ifunc resolver runs at load
    "tls",  # DTPMOD/DTPOFF/TPOFF/TLSDESC
    "copy",  # executables only
    "other",  # anything else: a type this architecture table does not know
    # R_*_NONE has no class: it writes nothing (archtables.NO_OP, RelocationSummary.no_ops)
)

# What a relocated word points to, as far as the file alone tells.
TARGET_KINDS: Tuple[str, ...] = (
    "code",  # an executable section (function pointers, vtable slots)
    "rodata",  # read-only data: string literals, const tables
    "relro",  # writable data that becomes read-only after relocation
    "data",  # writable data
    "own_export",  # a symbol this library defines and exports (symbolic: -Bsymbolic would bind it)
    "external",  # an undefined symbol, resolved in another object
    "tls",  # a thread-local offset or module id
    "unknown",  # no section holds the address (or the reader could not tell)
)

# Section kinds, as policies group writable bytes.
SECTION_KINDS: Tuple[str, ...] = (
    "data",  # .data and other writable PROGBITS outside RELRO
    "relro",  # .data.rel.ro and other data inside PT_GNU_RELRO
    "got",  # .got, .got.plt
    "init",  # .init_array, .fini_array, .preinit_array
    "dynamic",  # .dynamic
    "tls",  # .tdata (initialisation image of thread-local data)
    "bss",  # .bss: anonymous zero-fill, costs nothing until written
    "tbss",  # .tbss: per-thread zero-fill, no bytes in the image
    "readonly",  # a non-writable section that still receives relocations (TEXTREL)
)

UNATTRIBUTED_PREFIX = "<unattributed in "


def labelled(name: str, demangled: str | None) -> str:
    """A symbol's raw name, with its demangled name when it has a different one."""
    return f"{name} ({demangled})" if demangled and demangled != name else name


def library_name(soname: str | None, path: str) -> str:
    """The key a library is known by in baselines and policies: SONAME, else file name."""
    return soname or path.rsplit("/", 1)[-1]


def unattributed_name(section: str) -> str:
    """Name of the bucket that holds relocations landing in no symbol of `section`."""
    return f"{UNATTRIBUTED_PREFIX}{section}>"


@record
class Section:
    name: str
    type: str  # SHT_ name without prefix: PROGBITS, NOBITS, INIT_ARRAY, ...
    kind: str  # one of SECTION_KINDS
    address: int
    size: int
    file_backed: bool  # False for NOBITS (.bss, .tbss)
    writable: bool
    in_relro: bool  # inside PT_GNU_RELRO: read-only after the loader relocated it
    relocations: int  # dynamic relocations whose target lies in this section


@record
class Segment:
    """A writable PT_LOAD segment: what the loader maps copy-on-write."""

    address: int
    file_size: int
    memory_size: int
    align: int
    file_pages: int  # pages with file-backed bytes: the upper bound of what can be dirtied
    relocated_pages: int  # pages of this segment that hold at least one relocation target


@record
class RelocationSummary:
    total: int
    # architecture's type name -> count; RELR counts as RELATIVE; the MIPS GOT's entries
    # (written without records) as "MIPS GOT local/global entry (no record)"
    by_type: Mapping[str, int]
    by_class: Mapping[str, int]  # RELOCATION_CLASSES -> count (only classes present)
    by_table: Mapping[str, int]  # relocation section name (.rela.dyn, .relr.dyn, ...) -> count
    by_section: Mapping[str, int]  # section written into -> count ("<none>" if no section)
    # relocation table name -> its encoding (elf.ENCODINGS: REL, RELA, RELR, APS2 RELA, ...)
    encodings: Mapping[str, str] = field(default_factory=dict)
    # R_*_NONE entries: in total and by_type (readelf lists them), in no class: no write
    no_ops: int = 0
    # One line per table read through the dynamic tags because the section headers describe
    # it otherwise (hidden, retyped or cut short): why a count differs from a header listing.
    notes: Tuple[str, ...] = ()


@record
class Pages:
    page_size: int
    relocated: int  # distinct pages holding a relocation target: dirtied in every process
    writable_file_backed: int  # pages of the RW PT_LOAD file image: the worst case
    data_bss_shared: int  # 1 if .data's last page also holds .bss (zero-filled by the loader)
    load_dirty: int  # relocated pages plus the shared .data/.bss page if not already counted
    relocated_addresses: Tuple[int, ...] = field(default=(), repr=False)  # page-aligned vaddrs
    # The pages .data shares with .bss, which the loader zero-fills (page-aligned vaddrs).
    zero_filled_addresses: Tuple[int, ...] = field(default=(), repr=False)
    # Relocation targets on each page of relocated_addresses, aligned with it (the page map).
    relocation_counts: Tuple[int, ...] = field(default=(), repr=False)


@record
class Hint:
    kind: str  # one of hints.HINT_KINDS: a documented, stable vocabulary
    advice: str


@record
class Cluster:
    """A probable object among the unattributed words of a stripped library: a run of
    relocated words no more than a few words apart (relrocheck.cluster)."""

    address: int  # the first relocated word
    size: int  # from the first relocated word to the end of the last
    words: int  # relocated words in it
    stride: int  # bytes between records (the repeating gap pattern), word size for a table
    targets: Mapping[str, int]  # TARGET_KINDS -> count
    label: str  # what it probably is, from what its words point to


@record
class Symbol:
    """A symbol in writable data, or the unattributed remainder of one section."""

    name: str  # raw (mangled) name, or "<unattributed in .SECTION>"
    section: str
    address: int
    size: int
    type: str  # OBJECT, FUNC, TLS, NOTYPE ("" for unattributed buckets)
    binding: str  # LOCAL, GLOBAL, WEAK ("" for unattributed buckets)
    visibility: str  # DEFAULT, HIDDEN, PROTECTED, INTERNAL ("" for unattributed buckets)
    relocations: int
    by_class: Mapping[str, int]  # RELOCATION_CLASSES -> count, only classes present
    targets: Mapping[str, int]  # TARGET_KINDS -> count of relocated words, only kinds present
    pages: int  # distinct pages its relocation targets touch
    span_pages: int  # pages its bytes occupy (0 for unattributed buckets)
    aliases: Tuple[str, ...] = ()  # other names for the same bytes
    unattributed: bool = False
    demangled: Optional[str] = None
    source: Optional[str] = None  # "file:line" from DWARF, when debug info is present
    hint: Optional[Hint] = None
    # Relocated pages on which no other symbol or bucket has a relocation target: the pages
    # fixing this symbol alone frees (`pages` counts touched pages and is not additive).
    pages_exclusive: int = 0
    # The page-aligned addresses its relocation targets touch (for the fix plan; not in JSON).
    page_addresses: Tuple[int, ...] = field(default=(), repr=False, compare=False)
    # For the unattributed bucket of a stripped library: its probable objects, largest first.
    clusters: Tuple[Cluster, ...] = ()
    # Of its words pointing into read-only data, those that point to text (a NUL before the
    # target, text at it): string literals, not numeric tables. None when not measured.
    string_targets: Optional[int] = None

    def answers_to(self, name: str) -> bool:
        """Whether `name` is this symbol's raw name, an alias, or its demangled name."""
        return self.name == name or name in self.aliases or self.demangled == name


@record
class Library:
    path: str
    soname: Optional[str]
    file_type: str  # DYN or EXEC
    pie: bool  # DYN with DF_1_PIE, or an interpreter
    machine: str  # architecture key of archtables (x86_64, i386, aarch64, arm, ...)
    elf_class: int  # 32 or 64
    endian: str  # little or big
    word_size: int
    page_size: int  # the page size the page counts were made for
    max_page_size: int  # largest p_align of PT_LOAD: the largest page size the file supports
    file_size: int
    build_id: Optional[str]
    sections: Tuple[Section, ...]
    segments: Tuple[Segment, ...]  # writable PT_LOAD segments
    relro_range: Optional[Tuple[int, int]]  # [start, end) of PT_GNU_RELRO
    relro: str  # none, partial, full
    bind_now: bool
    textrel: bool
    textrel_sections: Tuple[str, ...]  # non-writable sections that receive relocations
    init_array_entries: int
    has_dt_init: bool
    static_initializers: int  # init_array entries + preinit_array entries + DT_INIT
    relocations: RelocationSummary
    pages: Pages
    symbols: Tuple[Symbol, ...]  # sorted by cost: exclusive pages, pages, relocations, size
    symbol_table: Optional[str]  # .symtab, .dynsym, or None when neither exists
    has_debug_info: bool = False
    symbols_from: Optional[str] = None  # the debug file whose symbol table was used, if any
    # The same page counts at the other page sizes asked for (`pages` is the primary one,
    # which symbols, policies and baselines use): Android's move to 16 KiB pages.
    pages_by_size: Tuple[Pages, ...] = ()
    # Symbolic and PLT relocations against this library's own exports, by relocation class and
    # the symbol's type (FUNC, OBJECT, IFUNC...): what -Bsymbolic(-functions) would bind.
    own_export_relocations: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Per translation unit (the name in its `_GLOBAL__sub_I_<unit>` symbol, from .symtab):
    # bytes of code its static initializer runs at load. One more global with a constructor
    # in a unit that had one grows this, not the number of .init_array entries.
    initializers: Mapping[str, int] = field(default_factory=dict)
    # (symbol, external | own_export, .got or .got.plt) per GOT/PLT slot a symbol fills; None
    # when not measured (a report shows none: measure(got_slots=False) saves their cost).
    got_slots: Optional[Tuple[Tuple[str, str, str], ...]] = None
    build_comment: Tuple[str, ...] = ()  # the .comment strings: compilers and linker versions
    # DW_AT_producer of its compile units ("GNU C17 12.2.0 -O2 -fPIC ..."), when debug info
    # was read: the compiler flags a baseline records.
    producers: Tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The key a library is known by in baselines and policies: SONAME, else file name."""
        return library_name(self.soname, self.path)

    @property
    def writable_bytes(self) -> int:
        """File-backed writable bytes: what every process maps copy-on-write."""
        return sum(s.size for s in self.sections if s.writable and s.file_backed)

    @property
    def zero_fill_bytes(self) -> int:
        return sum(s.size for s in self.sections if s.kind in ("bss", "tbss"))

    def bytes_by_kind(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for s in self.sections:
            if s.writable:
                totals[s.kind] = totals.get(s.kind, 0) + s.size
        return totals

    def symbol(self, name: str) -> Optional[Symbol]:
        return next((s for s in self.symbols if s.answers_to(name)), None)


_new, _set_field = object.__new__, object.__setattr__


def symbol_from_fields(fields: dict[str, Any]) -> Symbol:
    """A Symbol whose instance dict is `fields` itself: every field, defaults included.

    A record's __init__ takes 21 arguments and builds the dict again, 1.2 us per Symbol, and
    a large library has tens of thousands of symbols in writable data: the measurement builds
    one dict per symbol and hands it over (0.3 us). The result is an ordinary instance (equal,
    replace()-able).
    """
    symbol = _new(Symbol)
    _set_field(symbol, "__dict__", fields)
    return symbol
