"""Where a variable is defined: `file:line` from DWARF (DW_AT_decl_file / DW_AT_decl_line).

The debug info comes from the library itself (built with -g), from a separate debug file
given by the user, or from one the system keeps: `/usr/lib/debug/.build-id/xx/yyyy.debug`
(Debian's -dbgsym packages, Fedora's debuginfo) or the file named by `.gnu_debuglink`
(`objcopy --only-keep-debug` + `--add-gnu-debuglink`), next to the library, in its `.debug/`
folder, or under `/usr/lib/debug/<folder of the library>/`.

Cost. A library without debug info costs two `stat` calls and a look at its section headers
(no pyelftools import). With debug info, walking every DIE through pyelftools takes seconds
(7 s for the top-level DIEs alone of glibc's debug file): far too slow for a build step. So
the walk is replaced by a search: a variable's location is the expression `DW_OP_addr
<address>` (GCC, and DWARF 4 clang), or `DW_OP_addrx <index>` into `.debug_addr` (DWARF 5
clang); both are byte patterns found with C-level scans of the section. Only at a match does
pyelftools parse: the DIE that holds it (found by trying the few nearby offsets whose
abbreviation code is a variable with a location), its compile unit's abbreviations and its
line table's file names. Measured: see benchmarks/README.md and the report of issue 5.

A variable without debug info, or whose location is not a plain address (thread-local,
optimised into a register, merged by LTO), simply has no source; nothing else changes.
"""

from __future__ import annotations

import os
import posixpath
import re
import struct
import sys
import zlib
from array import array
from bisect import bisect_right
from itertools import compress
from typing import Iterable, Mapping, Optional

from relrocheck.elf import ElfFile, SectionHeader
from relrocheck.errors import ElfError, UsageError
from relrocheck.model import Library

DEBUG_ROOT = "/usr/lib/debug"
SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZLIB = 1
DW_OP_addr = 0x03
DW_OP_addrx = 0xA1
# How far before a location attribute its DIE may start: the abbreviation code, an inline
# name (DW_FORM_string, C++ names can be long), file, line, column, type, external, linkage.
_MAX_DIE_PREFIX = 1024


# -- finding the debug info --------------------------------------------------------------------


def find_debug_file(lib: Library, debug_file: Optional[str] = None) -> Optional[str]:
    """The file holding the library's DWARF, or None (then nothing is read at all)."""
    if debug_file is not None:
        if not os.path.isfile(debug_file):
            raise UsageError(f"debug file {debug_file}: no such file")
        return debug_file
    if lib.has_debug_info:
        return lib.path
    if lib.build_id and len(lib.build_id) > 2:
        candidate = f"{DEBUG_ROOT}/.build-id/{lib.build_id[:2]}/{lib.build_id[2:]}.debug"
        if os.path.isfile(candidate):
            return candidate
    return _from_debuglink(lib)


def _from_debuglink(lib: Library) -> Optional[str]:
    try:
        with ElfFile(lib.path) as elf:
            link = next((s for s in elf.sections if s.name == ".gnu_debuglink"), None)
            if link is None or link.sh_size < 8:
                return None
            raw = elf.section_bytes(link)
            order = "<" if elf.little_endian else ">"
    except ElfError:
        return None
    name_end = raw.find(b"\0")
    if name_end <= 0:
        return None
    name = raw[:name_end].decode("utf-8", "replace")
    crc_at = (name_end + 4) & ~3  # the CRC follows the name, 4-byte aligned
    if crc_at + 4 > len(raw):
        return None
    (crc,) = struct.unpack_from(order + "I", raw, crc_at)
    folder = os.path.dirname(os.path.abspath(lib.path))
    for candidate in (os.path.join(folder, name), os.path.join(folder, ".debug", name),
                      DEBUG_ROOT + os.path.join(folder, name)):
        if (os.path.isfile(candidate) and not os.path.samefile(candidate, lib.path)
                and _matches(candidate, lib.build_id, crc)):
            return candidate
    return None


def _matches(candidate: str, build_id: Optional[str], crc: int) -> bool:
    """A debuglink names a file, not a version: check it belongs to this very build."""
    if build_id:
        try:
            with ElfFile(candidate) as elf:
                other = elf.build_id()
        except ElfError:
            return False
        if other:
            return other == build_id
    value = 0
    with open(candidate, "rb") as f:
        while chunk := f.read(1 << 20):
            value = zlib.crc32(chunk, value)
    return value == crc


def check_debug_file(lib: Library, path: str) -> None:
    """A debug file given by the user must describe this build of the library."""
    try:
        with ElfFile(path) as elf:
            other = elf.build_id()
            has_info = any(s.name in (".debug_info", ".zdebug_info") for s in elf.sections)
    except ElfError as exc:
        raise UsageError(f"debug file {exc}") from None
    if lib.build_id and other and other != lib.build_id:
        raise UsageError(f"debug file {path} is for another build (build-id {other}, "
                         f"{lib.name} has {lib.build_id})")
    if not has_info:
        raise UsageError(f"debug file {path} has no .debug_info")


# -- the search --------------------------------------------------------------------------------


def source_lines(lib: Library, debug_file: Optional[str] = None) -> dict[int, str]:
    """Symbol address -> "file:line" for the variables the debug info places there.

    Only symbols with relocations or bytes are looked up. `debug_file` overrides the search
    (and must match the library's build-id). No debug info: an empty dict.
    """
    path = find_debug_file(lib, debug_file)
    if path is None:
        return {}
    if debug_file is not None:
        check_debug_file(lib, debug_file)
    wanted = {s.address for s in lib.symbols
              if not s.unattributed and (s.relocations or s.size) and s.type != "TLS"}
    if not wanted:
        return {}
    try:
        with ElfFile(path) as elf:
            sections = {s.name: s for s in elf.sections}
            info = _section(elf, sections, "debug_info")
            if not info:
                return {}
            reader = _Reader(elf, sections, info, lib.word_size, lib.endian)
            return reader.find(wanted)
    except ElfError:
        return {}


def _section(elf: ElfFile, sections: Mapping[str, SectionHeader], name: str) -> bytes:
    """Contents of .NAME, decompressed (SHF_COMPRESSED or .zNAME with zlib), or b""."""
    s = sections.get("." + name)
    if s is not None:
        data = elf.section_bytes(s)
        if not s.sh_flags & SHF_COMPRESSED:
            return data
        order = "<" if elf.little_endian else ">"
        header = struct.Struct(order + ("IIQQ" if elf.elf_class == 64 else "III"))
        if len(data) < header.size:
            return b""
        ch_type = header.unpack_from(data)[0]
        if ch_type != ELFCOMPRESS_ZLIB:
            return b""  # zstd (ELFCOMPRESS_ZSTD) needs a module outside the standard library
        return _inflate(data[header.size:])
    s = sections.get(".z" + name)
    if s is not None:
        data = elf.section_bytes(s)
        if data[:4] == b"ZLIB":
            return _inflate(data[12:])
    return b""


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:
        return b""


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


class _Reader:
    """The DWARF of one file, searched for the variables at a set of addresses."""

    def __init__(self, elf: ElfFile, sections: Mapping[str, SectionHeader], info: bytes,
                 word_size: int, endian: str) -> None:
        self.elf = elf
        self.sections = sections
        self.info = info
        self.word = word_size
        self.endian = endian
        self.order = "<" if endian == "little" else ">"
        self.units = self._unit_offsets()
        self._dwarf = None  # pyelftools DWARFInfo, made at the first match
        self._files: dict[int, list[str]] = {}  # CU offset -> file names by index
        self._variable_codes: dict[tuple[int, int], bool] = {}

    # -- units ---------------------------------------------------------------------------

    def _unit_offsets(self) -> list[int]:
        """Start of every unit header, from the unit_length chain alone (no parsing)."""
        info, offsets, offset = self.info, [], 0
        u32 = struct.Struct(self.order + "I")
        u64 = struct.Struct(self.order + "Q")
        while offset + 4 <= len(info):
            (length,) = u32.unpack_from(info, offset)
            header = 4
            if length == 0xFFFFFFFF:
                if offset + 12 > len(info):
                    break
                (length,) = u64.unpack_from(info, offset + 4)
                header = 12
            elif length >= 0xFFFFFFF0:
                break
            offsets.append(offset)
            offset += header + length
        return offsets

    def _unit_range(self, offset: int) -> tuple[int, int]:
        i = bisect_right(self.units, offset) - 1
        end = self.units[i + 1] if i + 1 < len(self.units) else len(self.info)
        return self.units[i], end

    # -- matches ---------------------------------------------------------------------------

    def find(self, wanted: set[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for position, address in self._addr_matches(wanted):
            if address not in found:
                line = self._source_at(position, address)
                if line:
                    found[address] = line
        missing = wanted - found.keys()
        if missing and ".debug_addr" in self.sections:
            for position, address in self._addrx_matches(missing):
                if address not in found:
                    line = self._source_at(position, address)
                    if line:
                        found[address] = line
        return found

    def _addr_matches(self, wanted: set[int]) -> Iterable[tuple[int, int]]:
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
        addr = _section(self.elf, self.sections, "debug_addr")
        if not addr:
            return
        hits: dict[int, list[tuple[int, int]]] = {}  # addr_base -> (index, address)
        offset = 0
        typecode = {4: "I", 8: "Q"}.get(self.word)
        if typecode is None:
            return
        while offset + 8 <= len(addr):
            (length,) = struct.unpack_from(self.order + "I", addr, offset)
            header = 8
            if length == 0xFFFFFFFF:
                (length,) = struct.unpack_from(self.order + "Q", addr, offset + 4)
                header = 16
            body_end = min(offset + (4 if header == 8 else 12) + length, len(addr))
            base = offset + header
            words = array(typecode)
            words.frombytes(addr[base:body_end - (body_end - base) % self.word])
            if self.endian != sys.byteorder:
                words.byteswap()
            indexes = list(compress(range(len(words)), map(wanted.__contains__, words)))
            if indexes:
                hits[base] = [(i, words[i]) for i in indexes]
            offset = body_end
        if not hits:
            return
        dwarf = self._dwarfinfo()
        for unit in self.units:
            if not hits:
                break
            try:
                top = dwarf.get_CU_at(unit).get_top_DIE()
            except Exception:  # noqa: BLE001 - a unit pyelftools cannot read has no answer
                continue
            base_attr = top.attributes.get("DW_AT_addr_base")
            if base_attr is None or base_attr.value not in hits:
                continue
            start, end = self._unit_range(unit)
            for index, address in hits.pop(base_attr.value):
                operand = bytes([DW_OP_addrx]) + _uleb(index)
                needle = _uleb(len(operand)) + operand
                position = self.info.find(needle, start, end)
                while position >= 0:
                    yield position, address
                    position = self.info.find(needle, position + 1, end)

    # -- from a match to file:line ----------------------------------------------------------

    def _dwarfinfo(self):
        if self._dwarf is None:
            self._dwarf = _make_dwarfinfo(self)
        return self._dwarf

    def _source_at(self, position: int, address: int) -> Optional[str]:
        die = self._die_with_location_at(position)
        if die is None:
            return None
        try:
            return self._decl(die)
        except Exception:  # noqa: BLE001 - malformed references: no source, not a failure
            return None

    def _die_with_location_at(self, position: int):
        """The DW_TAG_variable DIE whose DW_AT_location attribute starts at `position`."""
        from elftools.dwarf.die import DIE

        unit, _end = self._unit_range(position)
        dwarf = self._dwarfinfo()
        try:
            cu = dwarf.get_CU_at(unit)
        except Exception:  # noqa: BLE001
            return None
        stream = dwarf.debug_info_sec.stream
        info = self.info
        low = max(unit, position - _MAX_DIE_PREFIX)
        for start in range(position - 1, low - 1, -1):
            code, length = _read_uleb(info, start, position)
            if code is None or not self._is_variable_with_location(cu, code):
                continue
            try:
                die = DIE(cu=cu, stream=stream, offset=start)
            except Exception:  # noqa: BLE001 - not a DIE start after all
                continue
            location = die.attributes.get("DW_AT_location")
            if die.tag == "DW_TAG_variable" and location is not None and location.offset == position:
                return die
        return None

    def _is_variable_with_location(self, cu, code: int) -> bool:
        key = (cu.cu_offset, code)
        known = self._variable_codes.get(key)
        if known is None:
            try:
                decl = cu.get_abbrev_table().get_abbrev(code)
                known = decl["tag"] == "DW_TAG_variable" and any(
                    name == "DW_AT_location" for name, _form in decl.iter_attr_specs())
            except Exception:  # noqa: BLE001 - not an abbreviation code of this unit
                known = False
            self._variable_codes[key] = known
        return known

    def _decl(self, die) -> Optional[str]:
        """file:line of a variable. A definition that refers to its declaration
        (DW_AT_specification: C++ static members, namespace-scope variables declared first;
        DW_AT_abstract_origin) carries only what differs, typically its own line but not
        the file: each attribute is taken from the first entry of the chain that has it."""
        line = file_index = None
        for _ in range(4):
            attrs = die.attributes
            if line is None and "DW_AT_decl_line" in attrs:
                line = attrs["DW_AT_decl_line"].value
            if file_index is None and "DW_AT_decl_file" in attrs:
                file_index = attrs["DW_AT_decl_file"].value
                file_cu = die.cu
            if line is not None and file_index is not None:
                name = self._file_name(file_cu, file_index)
                return f"{name}:{line}" if name else None
            for ref in ("DW_AT_specification", "DW_AT_abstract_origin"):
                if ref in attrs:
                    die = die.get_DIE_from_attribute(ref)
                    break
            else:
                return None
        return None

    def _file_name(self, cu, index: int) -> Optional[str]:
        names = self._files.get(cu.cu_offset)
        if names is None:
            names = self._files[cu.cu_offset] = self._file_names(cu)
        if 0 <= index < len(names):
            return names[index] or None
        return None

    def _file_names(self, cu) -> list[str]:
        """File names by DW_AT_decl_file index: 1-based before DWARF 5, 0-based since."""
        program = self._dwarfinfo().line_program_for_CU(cu)
        if program is None:
            return []
        header = program.header
        version = header["version"]
        top = cu.get_top_DIE()
        comp_dir = _text(top.attributes["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in top.attributes else ""
        dirs = [_text(d) for d in header["include_directory"]]
        names = [] if version >= 5 else [""]
        for entry in header["file_entry"]:
            name = _text(entry.name)
            dir_index = entry.dir_index
            if version >= 5:
                folder = dirs[dir_index] if dir_index < len(dirs) else ""
            else:
                folder = comp_dir if dir_index == 0 else (
                    dirs[dir_index - 1] if dir_index - 1 < len(dirs) else "")
            if not posixpath.isabs(name):
                name = posixpath.join(folder, name)
            if not posixpath.isabs(name) and comp_dir:
                name = posixpath.join(comp_dir, name)
            names.append(posixpath.normpath(name))
        return names


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _read_uleb(data: bytes, start: int, limit: int) -> tuple[Optional[int], int]:
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


def _make_dwarfinfo(reader: _Reader):
    """A pyelftools DWARFInfo over only the sections a declaration lookup reads.

    ELFFile.get_dwarf_info() would load (and decompress) every debug section, .debug_loc and
    .eh_frame included: tens of MB for a big library, for nothing.
    """
    import inspect
    import io

    from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

    def descriptor(name: str, data: Optional[bytes] = None):
        if data is None:
            data = _section(reader.elf, reader.sections, name)
        if not data:
            return None
        return DebugSectionDescriptor(stream=io.BytesIO(data), name="." + name,
                                      global_offset=None, size=len(data), address=0)

    wanted = {
        "debug_info_sec": descriptor("debug_info", reader.info),
        "debug_abbrev_sec": descriptor("debug_abbrev"),
        "debug_str_sec": descriptor("debug_str"),
        "debug_line_sec": descriptor("debug_line"),
        "debug_line_str_sec": descriptor("debug_line_str"),
        "debug_str_offsets_sec": descriptor("debug_str_offsets"),
        "debug_addr_sec": descriptor("debug_addr"),
    }
    # Pass None for every other section, whatever this pyelftools version's list is.
    parameters = inspect.signature(DWARFInfo.__init__).parameters
    kwargs = {name: wanted.get(name) for name in parameters if name.endswith("_sec")}
    config = DwarfConfig(little_endian=reader.endian == "little", machine_arch="",
                         default_address_size=reader.word)
    return DWARFInfo(config=config, **kwargs)
