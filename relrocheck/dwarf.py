"""Where a variable is defined: `file:line` from DWARF (DW_AT_decl_file / DW_AT_decl_line),
and the compiler and flags each unit was built with (DW_AT_producer).

The file holding the DWARF (the library, a separate debug file) is found by
relrocheck/debugfile.py; this module only reads it.

Cost. Walking every DIE is far too slow for a build step in Python (pyelftools
needs 7 s for the top-level DIEs alone of glibc's debug file). So the walk is replaced by a
search: a variable's location is the expression `DW_OP_addr <address>` (GCC, DWARF 4 clang)
or `DW_OP_addrx <index>` into `.debug_addr` (DWARF 5 clang), byte patterns found by C-level
scans of the section. Only at a match is anything parsed: the DIE holding it (its start is
known from the abbreviation when the attributes before the location have fixed sizes, else
found among the few preceding offsets that decode to a variable's abbreviation code), its
declaration (DW_AT_specification), and its unit's abbreviations and file names. A small
reader does that parsing (below): pyelftools' generic one costs 220 us per variable.
Measured (2 cores, loaded): 71 ms for the 11,536 tables of the benchmark's synthetic library
built with -g (measure: 460 ms); 65 ms for glibc's compressed debug file, 46 of them zlib.

A variable without debug info, or whose location is not a plain address (thread-local,
optimised into a register, merged by LTO), simply has no source; nothing else changes.

Hostile input. The DWARF comes from files we did not make, and a malformed one must only ever
cost source lines, never fail or slow the command: every read is bounds-checked (a malformed
unit is dropped, see _MALFORMED), LEB128 numbers stop at 10 bytes, counts read from headers
are bounded by the bytes left, compressed sections inflate to at most their declared size
(and MAX_INFLATED), and the parsing a search may do is capped by a budget (_Budget) that
normal debug info never comes near.
"""

from __future__ import annotations

import posixpath
import re
import struct
import sys
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import compress
from typing import Literal

from relrocheck.elf import ElfFile, SectionHeader
from relrocheck.errors import ElfError
from relrocheck.model import Library
from relrocheck.text import printable

SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZLIB = 1
# An absolute bound on one inflated section, whatever its header claims (a larger one gives
# no source lines).
MAX_INFLATED = 2 << 30
DW_OP_addr = 0x03
DW_OP_addrx = 0xA1
# exprloc of 2 to 11 bytes holding DW_OP_addrx and its ULEB128 index.
_ADDRX_LOCATION = re.compile(rb"[\x02-\x0b]\xa1")
# How far before a location attribute its DIE may start: the abbreviation code, an inline
# name (DW_FORM_string, C++ names can be long), file, line, column, type, external, linkage.
_MAX_DIE_PREFIX = 1024


# -- the search --------------------------------------------------------------------------------


def source_lines(lib: Library, path: str) -> dict[int, str]:
    """Symbol address -> "file:line" for the variables the debug info in `path` places there.

    `path` is the library itself or its debug file (relrocheck.debugfile.debug_file_for).
    Only symbols with relocations or bytes are looked up. The file name is as DWARF records
    it, control characters escaped (relrocheck.text.printable); the line is after the last
    ":". No usable debug info, or malformed: an empty dict (or the lines found before the
    damage), never an error.
    """
    wanted: dict[int, list[str]] = {}
    for s in lib.symbols:
        if not s.unattributed and (s.relocations or s.size) and s.type != "TLS":
            wanted.setdefault(s.address, []).append(s.name)
    if not wanted:
        return {}
    found: dict[int, str] = {}
    try:
        with ElfFile(path) as elf:
            sections = {s.name: s for s in elf.sections}
            info = _section(elf, sections, "debug_info")
            if not info:
                return {}
            reader = _Reader(elf, sections, info, lib.word_size, lib.endian)
            reader.find(wanted, found)
    except ElfError:
        return {}
    except (_OutOfBudget, *_MALFORMED):
        pass  # what was found before the damage stays true
    return found


def producers(path: str, limit: int = 64) -> list[str]:
    """The distinct DW_AT_producer strings of the compile units of the DWARF in `path`.

    For example ["GNU C17 12.2.0 -mtune=generic -march=x86-64 -O2 -g"]: the compiler, its
    version and the options recorded with -grecord-gcc-switches (GCC's default; clang records
    only its version unless -grecord-command-line). In the order of the units, at most
    `limit` of them, each at most 4096 characters, control characters escaped.

    `path` is a library built with -g or its debug file (relrocheck.debugfile.debug_file_for
    finds it). Cheap: only the first DIE of each unit is read. No debug info, an unreadable
    file or malformed DWARF: an empty list (or the strings read before the damage), never an
    error.
    """
    out: list[str] = []
    try:
        with ElfFile(path) as elf:
            sections = {s.name: s for s in elf.sections}
            info = _section(elf, sections, "debug_info")
            if not info:
                return []
            endian = "little" if elf.little_endian else "big"
            reader = _Reader(elf, sections, info, elf.elf_class // 8, endian)
            seen: set[str] = set()
            for offset in reader.units:
                unit = reader.unit_at(offset)
                if unit is None:
                    continue
                try:
                    found = reader._top(unit).get(DW_AT_producer)
                    text = reader._string(unit, found[0], found[1]) if found else None
                except _MALFORMED:
                    continue  # this unit only
                if text and text not in seen:
                    seen.add(text)
                    out.append(printable(text[:4096]))
                    if len(out) >= limit:
                        break
    except ElfError:
        return []
    except (_OutOfBudget, *_MALFORMED):
        pass
    return out


def __getattr__(name: str) -> object:
    # Finding the debug file moved to relrocheck.debugfile; the old names still work.
    if name in ("debug_file_for", "find_debug_file", "check_debug_file", "DEBUG_ROOT"):
        from relrocheck import debugfile

        return getattr(debugfile, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _section(elf: ElfFile, sections: Mapping[str, SectionHeader], name: str) -> bytes:
    """Contents of .NAME, decompressed (SHF_COMPRESSED or .zNAME), or b"" (also when the
    compression is unknown, or the data do not inflate to exactly the size declared)."""
    s = sections.get("." + name)
    if s is not None:
        data = elf.section_bytes(s)
        if not s.sh_flags & SHF_COMPRESSED:
            return data
        order = "<" if elf.little_endian else ">"
        header = struct.Struct(order + ("IIQQ" if elf.elf_class == 64 else "III"))
        if len(data) < header.size:
            return b""
        ch_type, *rest = header.unpack_from(data)
        ch_size = rest[1] if elf.elf_class == 64 else rest[0]
        if ch_type == ELFCOMPRESS_ZLIB:
            return _inflate(data[header.size:], ch_size)
        # ELFCOMPRESS_ZSTD (ld --compress-debug-sections=zstd) needs a module outside the
        # standard library: such sections give no source lines.
        return b""
    s = sections.get(".z" + name)
    if s is not None:
        data = elf.section_bytes(s)
        if data[:4] == b"ZLIB" and len(data) >= 12:
            return _inflate(data[12:], int.from_bytes(data[4:12], "big"))
    return b""


def _inflate(data: bytes, size: int) -> bytes:
    """zlib data that must inflate to `size` bytes: never more is produced."""
    if not 0 < size <= MAX_INFLATED:
        return b""
    try:
        out = zlib.decompressobj().decompress(data, size)
    except zlib.error:
        return b""
    return out if len(out) == size else b""


# -- a minimal DWARF reader --------------------------------------------------------------------
#
# Only what a declaration lookup needs: unit headers, abbreviation tables, one DIE at a known
# offset, string forms and the file table of a line program header, for DWARF 2 to 5 (32 and
# 64-bit formats). pyelftools does all of this and much more, but through a generic parser:
# 220 us per variable, 2.6 s for the 11,500 tables of the benchmark's synthetic library built
# with -g; this reader takes about 10 us.

DW_TAG_variable = 0x34
DW_AT_location = 0x02
DW_AT_name = 0x03
DW_AT_stmt_list = 0x10
DW_AT_comp_dir = 0x1B
DW_AT_abstract_origin = 0x31
DW_AT_decl_file = 0x3A
DW_AT_decl_line = 0x3B
DW_AT_producer = 0x25
DW_AT_specification = 0x47
DW_AT_str_offsets_base = 0x72
DW_AT_addr_base = 0x73
DW_LNCT_path = 0x1
DW_LNCT_directory_index = 0x2

# Forms by how their value is stored.
_FIXED = {0x0B: 1, 0x0C: 1, 0x11: 1, 0x25: 1, 0x29: 1, 0x05: 2, 0x12: 2, 0x26: 2, 0x2A: 2,
          0x27: 3, 0x2B: 3, 0x06: 4, 0x13: 4, 0x1C: 4, 0x28: 4, 0x2C: 4, 0x07: 8, 0x14: 8,
          0x20: 8, 0x24: 8, 0x1E: 16, 0x19: 0}
_OFFSET = {0x0E, 0x17, 0x1D, 0x1F, 0x1F20, 0x1F21}  # strp, sec_offset, strp_sup, line_strp, GNU alt
_ULEB = {0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02}
_FORM_ADDR, _FORM_BLOCK2, _FORM_BLOCK4, _FORM_STRING, _FORM_BLOCK = 0x01, 0x03, 0x04, 0x08, 0x09
_FORM_BLOCK1, _FORM_SDATA, _FORM_REF_ADDR = 0x0A, 0x0D, 0x10
_FORM_INDIRECT, _FORM_EXPRLOC = 0x16, 0x18
_FORM_IMPLICIT_CONST = 0x21
_FORM_STRP, _FORM_LINE_STRP = 0x0E, 0x1F
_STRX = {0x1A, 0x25, 0x26, 0x27, 0x28, 0x1F02}
_UNIT_REF = {0x11, 0x12, 0x13, 0x14, 0x15}  # ref1..ref8, ref_udata: relative to the unit


class _Unsupported(ValueError):
    """A form or structure this reader does not follow: the variable gets no source."""


class _OutOfBudget(Exception):
    """The search did more parsing than any real debug info needs: stop it (see _Budget)."""


# What malformed DWARF can raise while read: it drops the unit (or the variable), nothing more.
_MALFORMED = (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error,
              RecursionError)


class _Budget:
    """How much parsing one search may do: DIE attributes, abbreviations, file entries.

    Linear in the bytes of the file: 8 steps per byte of .debug_info (plus a floor for tiny
    files). A search on real debug info spends a small part of it (the location pattern
    leads to the DIE), but crafted bytes could make every candidate offset a near-miss.
    """

    __slots__ = ("left",)

    def __init__(self, info_size: int) -> None:
        self.left = 100_000 + 8 * info_size

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise _OutOfBudget


_MAX_LEB = 10  # bytes: 64 bits


def _uleb_at(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    end = pos + _MAX_LEB
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                break
            return value, pos
        shift += 7
    raise _Unsupported("LEB128 number longer than 64 bits")


def _sleb_at(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    end = pos + _MAX_LEB
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (value - (1 << shift) if byte & 0x40 else value), pos
    raise _Unsupported("LEB128 number longer than 64 bits")


# The longest string read (a path, a name, a producer with every option): a section without
# the terminating NUL must not make each read scan to its end.
_MAX_STRING = 1 << 16


def _cstring(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.index(b"\0", pos, pos + _MAX_STRING)
    return data[pos:end], end + 1


class _Unit:
    """One unit header of .debug_info, with its abbreviations."""

    __slots__ = (
        "_files",
        "_top",
        "abbrevs",
        "address_size",
        "end",
        "first_die",
        "offset",
        "offset_size",
        "prefixes",
        "variable_codes",
        "version",
    )

    def __init__(self, offset: int, end: int, version: int, offset_size: int,
                 address_size: int, first_die: int, abbrevs: dict, variable_codes: set) -> None:
        self.offset, self.end, self.version = offset, end, version
        self.offset_size, self.address_size, self.first_die = offset_size, address_size, first_die
        self.abbrevs, self.variable_codes = abbrevs, variable_codes
        self.prefixes = self._prefixes()
        self._top: dict | None = None
        self._files: list[str] | None = None

    def _prefixes(self) -> list[tuple[bytes, int]]:
        """(encoded code, bytes from the DIE start to DW_AT_location) of each variable
        abbreviation whose attributes before the location all have a fixed size: for those
        the DIE start is known from the location's offset, no search needed."""
        out = []
        for code in sorted(self.variable_codes):
            size = 0
            for name, form, _implicit in self.abbrevs[code][1]:
                if name == DW_AT_location:
                    encoded = _uleb(code)
                    out.append((encoded, len(encoded) + size))
                    break
                width = _FIXED.get(form)
                if width is None:
                    if form in _OFFSET:
                        width = self.offset_size
                    elif form == _FORM_ADDR:
                        width = self.address_size
                    elif form == _FORM_REF_ADDR:
                        width = self.address_size if self.version <= 2 else self.offset_size
                    elif form == _FORM_IMPLICIT_CONST:
                        width = 0
                    else:
                        break  # a name inline, a ULEB: the start must be searched for
                size += width
        return out


class _Reader:
    """The DWARF of one file, searched for the variables at a set of addresses."""

    def __init__(self, elf: ElfFile, sections: Mapping[str, SectionHeader], info: bytes,
                 word_size: int, endian: str) -> None:
        self.elf = elf
        self.budget = _Budget(len(info))
        self.sections = sections
        self.info = info
        self.word = word_size
        self.endian: Literal["little", "big"] = "little" if endian == "little" else "big"
        self.order = "<" if endian == "little" else ">"
        self.units = self._unit_offsets()
        self._units: dict[int, _Unit | None] = {}
        self._abbrevs: dict[int, tuple[dict, set]] = {}
        self._data: dict[str, bytes] = {}

    def data(self, name: str) -> bytes:
        if name not in self._data:
            self._data[name] = _section(self.elf, self.sections, name)
        return self._data[name]

    def _int(self, data: bytes, pos: int, size: int) -> int:
        return int.from_bytes(data[pos:pos + size], self.endian)

    # -- units ---------------------------------------------------------------------------

    def _unit_offsets(self) -> list[int]:
        """Start of every unit header, from the unit_length chain alone."""
        info, offsets, offset = self.info, [], 0
        while offset + 4 <= len(info):
            length = self._int(info, offset, 4)
            header = 4
            if length == 0xFFFFFFFF:
                length = self._int(info, offset + 4, 8)
                header = 12
            elif length >= 0xFFFFFFF0:
                break
            offsets.append(offset)
            offset += header + length
        return offsets

    def unit_at(self, position: int) -> _Unit | None:
        """The unit whose bytes hold `position` (None if it cannot be read)."""
        i = bisect_right(self.units, position) - 1
        if i < 0:
            return None
        offset = self.units[i]
        if offset not in self._units:
            try:
                self._units[offset] = self._read_unit(offset)
            except _MALFORMED:
                self._units[offset] = None
        return self._units[offset]

    def _read_unit(self, offset: int) -> _Unit:
        info = self.info
        length = self._int(info, offset, 4)
        offset_size, pos = 4, offset + 4
        if length == 0xFFFFFFFF:
            length, offset_size, pos = self._int(info, pos, 8), 8, pos + 8
        end = pos + length
        version = self._int(info, pos, 2)
        pos += 2
        if version >= 5:
            unit_type, address_size = info[pos], info[pos + 1]
            abbrev_offset = self._int(info, pos + 2, offset_size)
            pos += 2 + offset_size
            if unit_type in (4, 5):  # skeleton, split_compile: dwo_id
                pos += 8
            elif unit_type in (2, 6):  # type, split_type: signature, type offset
                pos += 8 + offset_size
        elif version >= 2:
            abbrev_offset = self._int(info, pos, offset_size)
            address_size = info[pos + offset_size]
            pos += offset_size + 1
        else:
            raise _Unsupported(f"DWARF version {version}")
        abbrevs, variable_codes = self._abbrev_table(abbrev_offset)
        return _Unit(offset, end, version, offset_size, address_size, pos, abbrevs,
                     variable_codes)

    def _abbrev_table(self, offset: int) -> tuple[dict, set]:
        """code -> (tag, ((attribute, form, implicit value), ...)), and the codes of
        variables that have a location."""
        if offset in self._abbrevs:
            return self._abbrevs[offset]
        data = self.data("debug_abbrev")
        table: dict[int, tuple[int, tuple]] = {}
        variables: set[int] = set()
        pos = offset
        uleb = _uleb_at
        # Codes, tags, attributes and forms are almost always below 128: one byte each.
        while pos < len(data):
            code = data[pos]
            code, pos = (code, pos + 1) if code < 0x80 else uleb(data, pos)
            if code == 0:
                break
            tag = data[pos]
            tag, pos = (tag, pos + 1) if tag < 0x80 else uleb(data, pos)
            pos += 1  # DW_CHILDREN_yes/no
            specs = []
            while True:
                name = data[pos]
                name, pos = (name, pos + 1) if name < 0x80 else uleb(data, pos)
                form = data[pos]
                form, pos = (form, pos + 1) if form < 0x80 else uleb(data, pos)
                if name == 0 and form == 0:
                    break
                implicit = None
                if form == _FORM_IMPLICIT_CONST:
                    implicit, pos = _sleb_at(data, pos)
                specs.append((name, form, implicit))
            self.budget.spend(1 + len(specs))
            table[code] = (tag, tuple(specs))
            if tag == DW_TAG_variable and any(name == DW_AT_location for name, _f, _i in specs):
                variables.add(code)
        self._abbrevs[offset] = (table, variables)
        return table, variables

    # -- values and DIEs ------------------------------------------------------------------

    def _value(self, data: bytes, pos: int, form: int, implicit: int | None,
               offset_size: int, address_size: int, version: int) -> tuple[object, int]:
        size = _FIXED.get(form)
        if size is not None:
            if form == 0x1E:
                return data[pos:pos + 16], pos + 16
            return (self._int(data, pos, size) if size else 1), pos + size
        if form in _ULEB:
            return _uleb_at(data, pos)
        if form in _OFFSET:
            return self._int(data, pos, offset_size), pos + offset_size
        if form == _FORM_ADDR:
            return self._int(data, pos, address_size), pos + address_size
        if form == _FORM_REF_ADDR:
            size = address_size if version <= 2 else offset_size
            return self._int(data, pos, size), pos + size
        if form == _FORM_STRING:
            return _cstring(data, pos)
        # Blocks and expressions: only where they are is used (a location is recognised by
        # its offset), so their bytes are not copied; one past the end is malformed.
        if form in (_FORM_EXPRLOC, _FORM_BLOCK):
            length, pos = _uleb_at(data, pos)
            if pos + length > len(data):
                raise _Unsupported("a block past the end of its section")
            return None, pos + length
        if form in (_FORM_BLOCK1, _FORM_BLOCK2, _FORM_BLOCK4):
            width = {_FORM_BLOCK1: 1, _FORM_BLOCK2: 2, _FORM_BLOCK4: 4}[form]
            length = self._int(data, pos, width)
            pos += width
            if pos + length > len(data):
                raise _Unsupported("a block past the end of its section")
            return None, pos + length
        if form == _FORM_SDATA:
            return _sleb_at(data, pos)
        if form == _FORM_IMPLICIT_CONST:
            return implicit, pos
        if form == _FORM_INDIRECT:
            real, pos = _uleb_at(data, pos)
            if real == _FORM_INDIRECT:
                raise _Unsupported("indirect form of an indirect form")
            return self._value(data, pos, real, implicit, offset_size, address_size, version)
        raise _Unsupported(f"form {form:#x}")

    def die(self, unit: _Unit, pos: int) -> tuple[int, dict[int, tuple[int, object, int]]] | None:
        """(tag, {attribute: (form, value, offset of the value)}) of the DIE at `pos`."""
        info = self.info
        code, pos = _uleb_at(info, pos)
        entry = unit.abbrevs.get(code)
        if entry is None:
            return None
        tag, specs = entry
        self.budget.spend(1 + len(specs))
        attrs = {}
        for name, form, implicit in specs:
            start = pos
            value, pos = self._value(info, pos, form, implicit, unit.offset_size,
                                     unit.address_size, unit.version)
            attrs[name] = (form, value, start)
            if pos > unit.end:
                return None
        return tag, attrs

    # -- matches ---------------------------------------------------------------------------

    def find(self, wanted: Mapping[int, Sequence[str]], found: dict[int, str]) -> None:
        """Fill `found` (address -> "file:line") for the `wanted` addresses (-> the names of
        their symbols); it keeps what was found if this stops."""
        for position, address in self._addr_matches(wanted.keys()):
            if address not in found:
                line = self._source_at(position, wanted[address])
                if line:
                    found[address] = line
        missing = wanted.keys() - found.keys()
        if missing and ".debug_addr" in self.sections:
            for position, address in self._addrx_matches(missing):
                if address not in found:
                    line = self._source_at(position, wanted[address])
                    if line:
                        found[address] = line

    def _addr_matches(self, wanted: Iterable[int]) -> Iterable[tuple[int, int]]:
        """Offsets of `exprloc(1 + word) DW_OP_addr <wanted address>` in .debug_info."""
        word, info = self.word, self.info
        by_bytes = {a.to_bytes(word, self.endian): a for a in wanted if 0 <= a < 1 << (8 * word)}
        pattern = re.compile(re.escape(bytes([1 + word, DW_OP_addr])))
        for m in pattern.finditer(info):
            p = m.start()
            address = by_bytes.get(info[p + 2:p + 2 + word])
            if address is not None:
                yield p, address

    def _addrx_matches(self, wanted: set[int]) -> Iterable[tuple[int, int]]:
        """Offsets of `exprloc DW_OP_addrx <index>` whose .debug_addr slot holds a wanted
        address, searched inside the unit whose DW_AT_addr_base is that slot's table."""
        addr = self.data("debug_addr")
        typecode = {4: "I", 8: "Q"}.get(self.word)
        if not addr or typecode is None:
            return
        hits: dict[int, list[tuple[int, int]]] = {}  # addr_base -> (index, address)
        offset = 0
        while offset + 8 <= len(addr):
            length, header = self._int(addr, offset, 4), 8
            if length == 0xFFFFFFFF:
                length, header = self._int(addr, offset + 4, 8), 16
            body_end = min(offset + (4 if header == 8 else 12) + length, len(addr))
            base = offset + header
            words = array(typecode)
            words.frombytes(addr[base:body_end - (body_end - base) % self.word])
            if self.endian != sys.byteorder:
                words.byteswap()
            indexes = list(compress(range(len(words)), map(wanted.__contains__, words)))
            if indexes:
                # One address has one slot; crafted tables may repeat it: keep a few.
                per_address: dict[int, int] = {}
                kept = []
                for i in indexes:
                    address = words[i]
                    if per_address.get(address, 0) < 4:
                        per_address[address] = per_address.get(address, 0) + 1
                        kept.append((i, address))
                    self.budget.spend(1)
                hits[base] = kept
            offset = body_end
        for unit_offset in self.units:
            if not hits:
                break
            unit = self.unit_at(unit_offset)
            if unit is None:
                continue
            try:
                base_attr = self._top(unit).get(DW_AT_addr_base)
            except _MALFORMED:
                continue
            if base_attr is None or base_attr[1] not in hits:
                continue
            # One pass over the unit for every `exprloc(n) DW_OP_addrx <index>`, then a dict
            # lookup: searching once per index was quadratic in a large unit (5 s for the
            # 15,000 variables of a one-file library).
            address_of = dict(hits.pop(base_attr[1]))
            info = self.info
            for m in _ADDRX_LOCATION.finditer(info, unit.first_die, unit.end):
                p = m.start()
                try:
                    index, end = _uleb_at(info, p + 2)
                except _MALFORMED:
                    continue
                located = address_of.get(index)
                if located is not None and end - p - 1 == info[p]:
                    self.budget.spend(1)
                    yield p, located

    # -- from a match to file:line ----------------------------------------------------------

    def _source_at(self, position: int, names: Sequence[str]) -> str | None:
        """file:line of the variable whose location is at `position`, one of `names`."""
        try:
            unit = self.unit_at(position)
            if unit is None:
                return None
            for attrs in self._variables_with_location_at(unit, position):
                if not self._named_like(unit, attrs, names):
                    continue
                line = self._decl(unit, attrs)
                if line:
                    return line
        except _MALFORMED:
            pass  # malformed or unsupported: no source, never a failure
        return None

    def _variables_with_location_at(self, unit: _Unit, position: int) -> Iterator[dict]:
        """Attributes of each DW_TAG_variable whose DW_AT_location value may start at
        `position`, most likely first.

        DIEs have no back links, so try the offsets just before the match whose
        abbreviation code (a ULEB128) is one of this unit's variables with a location, and
        keep those whose location attribute lands exactly on the match. More than one may:
        the bytes `0a 09 01 ...` are a DIE of code 10 and, one byte later, one of code 9
        (clang: the same attributes, a name index one byte wider); the caller picks by name.
        """
        info, codes = self.info, unit.variable_codes
        tried = set()
        for encoded, prefix in unit.prefixes:
            start = position - prefix
            if start >= unit.first_die and info.startswith(encoded, start):
                tried.add(start)
                attrs = self._variable_at(unit, start, position)
                if attrs is not None:
                    yield attrs
        low = max(unit.first_die, position - _MAX_DIE_PREFIX)
        for start in range(position - 1, low - 1, -1):
            if start in tried:
                continue
            self.budget.spend(1)
            code, _length = _read_uleb(info, start, position)
            if code is None or code not in codes:
                continue
            attrs = self._variable_at(unit, start, position)
            if attrs is not None:
                yield attrs

    def _named_like(self, unit: _Unit, attrs: dict, names: Sequence[str]) -> bool:
        """Whether the DIE's DW_AT_name, if it has one we can read, is in a symbol's name
        (`keys` in `_ZN6config4keysE`, `table` in `table.0`)."""
        found = attrs.get(DW_AT_name)
        if found is None:
            return True  # a definition that names its declaration (DW_AT_specification)
        text = self._string(unit, found[0], found[1])
        return text is None or any(text in name for name in names)

    def _variable_at(self, unit: _Unit, start: int, position: int) -> dict | None:
        try:
            parsed = self.die(unit, start)
        except _MALFORMED:
            return None
        if parsed is None:
            return None
        location = parsed[1].get(DW_AT_location)
        if location is not None and location[2] == position:
            return parsed[1]
        return None

    def _decl(self, unit: _Unit, attrs: dict) -> str | None:
        """file:line of a variable. A definition that refers to its declaration
        (DW_AT_specification: C++ static members, namespace-scope variables declared first;
        DW_AT_abstract_origin) carries only what differs, typically its own line but not
        the file: each attribute is taken from the first entry of the chain that has it."""
        line = file_index = None
        file_unit = unit
        for _ in range(4):
            if line is None and DW_AT_decl_line in attrs:
                line = attrs[DW_AT_decl_line][1]
            if file_index is None and DW_AT_decl_file in attrs:
                file_index, file_unit = attrs[DW_AT_decl_file][1], unit
            if line is not None and file_index is not None:
                names = self._file_names(file_unit)
                if (isinstance(file_index, int) and isinstance(line, int)
                        and 0 <= file_index < len(names) and names[file_index]):
                    return f"{printable(names[file_index])}:{line}"
                return None
            ref = attrs.get(DW_AT_specification) or attrs.get(DW_AT_abstract_origin)
            if ref is None:
                return None
            form, value, _pos = ref
            if form in _UNIT_REF:
                target = unit.offset + value
            elif form == _FORM_REF_ADDR:
                target = value
            else:
                return None  # a reference into a supplementary file (dwz): not followed
            target_unit = self.unit_at(target)
            if target_unit is None:
                return None
            unit = target_unit
            parsed = self.die(unit, target)
            if parsed is None:
                return None
            attrs = parsed[1]
        return None

    # -- unit-level facts --------------------------------------------------------------------

    def _top(self, unit: _Unit) -> dict:
        if unit._top is None:
            parsed = self.die(unit, unit.first_die)
            unit._top = parsed[1] if parsed is not None else {}
        return unit._top

    def _string(self, unit: _Unit, form: int, value: object) -> str | None:
        raw: object
        if form == _FORM_STRING:
            raw = value
        elif not isinstance(value, int):
            return None
        elif form == _FORM_STRP:
            raw, _ = _cstring(self.data("debug_str"), value)
        elif form == _FORM_LINE_STRP:
            raw, _ = _cstring(self.data("debug_line_str"), value)
        elif form in _STRX:
            base_attr = self._top(unit).get(DW_AT_str_offsets_base)
            base = base_attr[1] if base_attr is not None else 2 * unit.offset_size
            offsets = self.data("debug_str_offsets")
            where = base + value * unit.offset_size
            raw, _ = _cstring(self.data("debug_str"), self._int(offsets, where, unit.offset_size))
        else:
            return None
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None

    def _file_names(self, unit: _Unit) -> list[str]:
        """File names by DW_AT_decl_file index: 1-based before DWARF 5, 0-based since."""
        if unit._files is None:
            try:
                unit._files = self._read_file_names(unit)
            except _MALFORMED:
                unit._files = []
        return unit._files

    def _read_file_names(self, unit: _Unit) -> list[str]:
        top = self._top(unit)
        stmt = top.get(DW_AT_stmt_list)
        if stmt is None:
            return []
        comp = top.get(DW_AT_comp_dir)
        comp_dir = (self._string(unit, comp[0], comp[1]) or "") if comp else ""
        data = self.data("debug_line")
        pos = stmt[1]
        length, offset_size = self._int(data, pos, 4), 4
        pos += 4
        if length == 0xFFFFFFFF:
            pos, offset_size = pos + 8, 8
        version = self._int(data, pos, 2)
        pos += 2
        address_size = unit.address_size
        if version >= 5:
            address_size = data[pos]
            pos += 2  # address_size, segment_selector_size
        pos += offset_size  # header_length
        pos += 1 + (1 if version >= 4 else 0) + 3  # min_inst, max_ops, is_stmt, base, range
        opcode_base = data[pos]
        pos += opcode_base  # opcode_base itself and the standard opcode lengths
        if version >= 5:
            dirs, pos = self._entries(unit, data, pos, offset_size, address_size)
            files, pos = self._entries(unit, data, pos, offset_size, address_size)
            folders = [d[0] or "" for d in dirs]
            base = folders[0] if folders else comp_dir
            entries = [(name or "", index) for name, index in files]
            names: list[str] = []
        else:
            folders = [comp_dir]
            while data[pos]:
                raw, pos = _cstring(data, pos)
                folders.append(raw.decode("utf-8", "replace"))
            pos += 1
            entries = []
            while data[pos]:
                raw, pos = _cstring(data, pos)
                index, pos = _uleb_at(data, pos)
                _mtime, pos = _uleb_at(data, pos)
                _size, pos = _uleb_at(data, pos)
                entries.append((raw.decode("utf-8", "replace"), index))
                self.budget.spend(1)
            base = comp_dir
            names = [""]
        # Relative directories are relative to the compilation directory (directory 0 in
        # DWARF 5), which may itself be relative: -fdebug-prefix-map=/build/x=.
        for name, index in entries:
            folder = folders[index] if 0 <= index < len(folders) else ""
            if index and not posixpath.isabs(folder):
                folder = posixpath.join(base, folder)
            if not posixpath.isabs(name):
                name = posixpath.join(folder, name)
            names.append(posixpath.normpath(name) if name else "")
        return names

    def _entries(self, unit: _Unit, data: bytes, pos: int, offset_size: int,
                 address_size: int) -> tuple[list[tuple[str | None, int]], int]:
        """A DWARF 5 directory or file name table: (path, directory index) per entry."""
        count = data[pos]
        pos += 1
        formats = []
        for _ in range(count):
            content, pos = _uleb_at(data, pos)
            form, pos = _uleb_at(data, pos)
            formats.append((content, form))
        entries, pos = _uleb_at(data, pos)
        if entries and not formats or entries > len(data) - pos:
            # Each entry takes at least a byte: a count the bytes left cannot hold (say
            # 2^32-1 directories without a format) is malformed, not a loop to run.
            raise _Unsupported("line table entry count past the end of the table")
        self.budget.spend(entries)
        out = []
        for _ in range(entries):
            path: str | None = None
            index, start = 0, pos
            for content, form in formats:
                value, pos = self._value(data, pos, form, None, offset_size, address_size, 5)
                if content == DW_LNCT_path:
                    path = self._string(unit, form, value)
                elif content == DW_LNCT_directory_index and isinstance(value, int):
                    index = value
            if pos == start:
                raise _Unsupported("a line table entry of no bytes")
            out.append((path, index))
        return out, pos


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uleb(data: bytes, start: int, limit: int) -> tuple[int | None, int]:
    """The ULEB128 at data[start:], if it ends before `limit`."""
    value, shift, position = 0, 0, start
    while position < limit:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return (value or None), position - start
        shift += 7
        if shift > 28:
            break
    return None, 0
