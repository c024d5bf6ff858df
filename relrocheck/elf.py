"""A small, strict ELF reader that hands out tables as arrays.

Headers are unpacked with `struct` once per file; symbol and relocation tables are read as
typed columns (`array.array`), a slice at a time, so a library with hundreds of thousands of
relocations costs a few C-level passes and no Python object per entry. Every offset and size
taken from the file is checked against the file before use: a malformed file raises `ElfError`
with a sentence a user can act on, never an IndexError or struct.error.

The file is read with `os.pread`, not mapped: a file truncated while it is read then gives a
short read and an `ElfError`, where a mapping would kill the process with SIGBUS. Reading
into bytes costs one copy, which the column slices needed anyway. Every read is bounded by
what the caller needs (a name up to its NUL, a note's header and descriptor), never by what a
header claims, so a sparse file of many GiB costs what its real content costs.

Names follow the ELF specification (e_*, sh_*, p_*, d_tag, DT_*, SHT_*), so a reader who knows
the spec knows where to look.
"""

from __future__ import annotations

import errno
import operator
import os
import stat
import struct
import sys
from array import array
from bisect import bisect_right
from functools import partial
from itertools import repeat
from typing import Callable, Collection, Iterable, NamedTuple, Sequence

from relrocheck.columns import compressed, pick
from relrocheck.errors import ElfError
from relrocheck.native import kernels
from relrocheck.relocdecode import decode_aps2, decode_relr, mips64_infos
from relrocheck.text import printable

ELF_MAGIC = b"\x7fELF"
AR_MAGIC = b"!<arch>\n"

ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2

ET_EXEC, ET_DYN = 2, 3
ET_NAMES = {0: "NONE", 1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE"}

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_XINDEX = 0xFFFF
PN_XNUM = 0xFFFF

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_DYNAMIC = 6
SHT_NOBITS = 8
SHT_REL = 9
SHT_DYNSYM = 11
SHT_INIT_ARRAY = 14
SHT_FINI_ARRAY = 15
SHT_PREINIT_ARRAY = 16
SHT_RELR = 19
# Android's packed tables (APS2) and lld's RELR under Android's own section type.
SHT_ANDROID_REL = 0x60000001
SHT_ANDROID_RELA = 0x60000002
SHT_ANDROID_RELR = 0x6FFFFF00
SHT_NAMES = {
    0: "NULL", 1: "PROGBITS", 2: "SYMTAB", 3: "STRTAB", 4: "RELA", 5: "HASH", 6: "DYNAMIC",
    7: "NOTE", 8: "NOBITS", 9: "REL", 11: "DYNSYM", 14: "INIT_ARRAY", 15: "FINI_ARRAY",
    16: "PREINIT_ARRAY", 17: "GROUP", 18: "SYMTAB_SHNDX", 19: "RELR",
    SHT_ANDROID_REL: "ANDROID_REL", SHT_ANDROID_RELA: "ANDROID_RELA",
    SHT_ANDROID_RELR: "ANDROID_RELR",
}

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_TLS = 0x400

PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
PT_NOTE = 4
PT_TLS = 7
PT_GNU_RELRO = 0x6474E552
PF_W = 0x2

DT_NULL = 0
DT_PLTRELSZ = 2
DT_HASH = 4
DT_SYMTAB = 6
DT_GNU_HASH = 0x6FFFFEF5
DT_RELA = 7
DT_RELASZ = 8
DT_RELAENT = 9
DT_STRTAB = 5
DT_STRSZ = 10
DT_INIT = 12
DT_SONAME = 14
DT_REL = 17
DT_RELSZ = 18
DT_RELENT = 19
DT_PLTREL = 20
DT_TEXTREL = 22
DT_JMPREL = 23
DT_RELRSZ = 35
DT_RELR = 36
DT_RELRENT = 37
DT_ANDROID_REL = 0x6000000F
DT_ANDROID_RELSZ = 0x60000010
DT_ANDROID_RELA = 0x60000011
DT_ANDROID_RELASZ = 0x60000012
DT_ANDROID_RELR = 0x6FFFE000
DT_ANDROID_RELRSZ = 0x6FFFE001
DT_ANDROID_RELRENT = 0x6FFFE003
# Firefox's relrhack hides DT_RELR* from the loader by setting this bit in the tag and
# applies the table itself at start-up: the pages are written all the same.
DT_RELRHACK_BIT = 0x8000000
# Relocation tables the loader follows that this reader does not decode: refused by name.
DT_CREL = 0x40000026
UNDECODED_RELOCATION_TAGS = {DT_CREL: "DT_CREL"}
DT_BIND_NOW = 24
DT_INIT_ARRAYSZ = 27
DT_PREINIT_ARRAYSZ = 33
DT_FLAGS = 30
DT_FLAGS_1 = 0x6FFFFFFB
DF_TEXTREL = 0x4
DF_BIND_NOW = 0x8
DF_1_NOW = 0x1
DF_1_PIE = 0x08000000

STT_NAMES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 5: "COMMON", 6: "TLS",
             10: "GNU_IFUNC"}
STB_NAMES = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "GNU_UNIQUE"}
STV_NAMES = {0: "DEFAULT", 1: "INTERNAL", 2: "HIDDEN", 3: "PROTECTED"}
STT_TLS = 6

NT_GNU_BUILD_ID = 3

EM_MIPS = 8
# MIPS: the GOT the loader writes without relocation records.
DT_PLTGOT = 3
DT_MIPS_LOCAL_GOTNO = 0x7000000A
DT_MIPS_SYMTABNO = 0x70000011
DT_MIPS_GOTSYM = 0x70000013

# Layouts per ELF class: (header tail after e_ident, section header, program header, dynamic).
_LAYOUTS = {
    ELFCLASS32: ("HHIIIIIHHHHHH", "IIIIIIIIII", "IIIIIIII", "iI"),
    ELFCLASS64: ("HHIQQQIHHHHHH", "IIQQQQIIQQ", "IIQQQQQQ", "qQ"),
}
# Tables are copied into columns this many bytes at a time.
_SLICE_BYTES = 1 << 20
_ODD = bytes(b & 1 for b in range(256))  # translate(): 1 for a byte with bit 0 set
_PREADV = hasattr(os, "preadv")  # read into an existing buffer (Linux, BSDs)
# A string table up to this size is read whole for name lookups; a larger one name by name.
_WHOLE_STRTAB_BYTES = 16 << 20
# Longest name read from a string table; a longer one is cut. The longest mangled C++ names
# in real libraries are a few KiB; the bound keeps a crafted table without NULs linear.
MAX_NAME_BYTES = 1 << 16
# Bytes a name may hold that no output needs to escape (a string table of only these and
# NULs is decoded without a look at each name).
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
# Longest build-id descriptor read (SHA-1 is 20 bytes, the longest in use 32).
_MAX_BUILD_ID = 256
# Width of the typecodes we use for columns; checked so arrays match the file's words.
_U16, _U32, _U64 = "H", "I", "Q"
U32, U64 = _U32, _U64
assert array(_U16).itemsize == 2 and array(_U32).itemsize == 4 and array(_U64).itemsize == 8


class SectionHeader(NamedTuple):
    number: int  # position in the section header table
    name: str
    sh_type: int
    sh_flags: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_info: int
    sh_addralign: int
    sh_entsize: int

    @property
    def type_name(self) -> str:
        return SHT_NAMES.get(self.sh_type, f"0x{self.sh_type:x}")

    @property
    def is_alloc(self) -> bool:
        return bool(self.sh_flags & SHF_ALLOC)

    @property
    def is_writable(self) -> bool:
        return bool(self.sh_flags & SHF_WRITE)

    @property
    def is_tls(self) -> bool:
        return bool(self.sh_flags & SHF_TLS)

    @property
    def has_file_bytes(self) -> bool:
        return self.sh_type != SHT_NOBITS


class ProgramHeader(NamedTuple):
    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_filesz: int
    p_memsz: int
    p_align: int


# Elf32_Sym / Elf64_Sym fields as (offset, size), in SymbolColumns order.
_SYMBOL_FIELDS = {
    32: (16, ((0, 4), (4, 4), (8, 4), (12, 1), (13, 1), (14, 2))),
    64: (24, ((0, 4), (8, 8), (16, 8), (4, 1), (5, 1), (6, 2))),
}

SYMBOL_ENTSIZE = {bits: fields[0] for bits, fields in _SYMBOL_FIELDS.items()}


class SymbolColumns(NamedTuple):
    """A symbol table read as one array per field (st_*), and its string table."""

    strtab: SectionHeader
    st_name: array
    st_value: array
    st_size: array
    st_info: array
    st_other: array
    st_shndx: array


class ElfFile:
    """An open ELF file. Use as a context manager; arrays it returns stay valid after close."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1
        self._open(path)
        try:
            self._parse_headers()
        except BaseException:
            self.close()
            raise

    # -- opening -------------------------------------------------------------------------

    def _open(self, path: str) -> None:
        # O_NONBLOCK: a path that became a FIFO (or a device) after a stat must not block
        # the open; fstat of the open descriptor then says what it really is.
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise ElfError("no such file", path) from None
        except IsADirectoryError:
            raise ElfError("is a directory, not an ELF file", path) from None
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            raise ElfError(f"cannot read: {getattr(exc, 'strerror', None) or exc}",
                           path) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise ElfError("is a directory, not an ELF file", path)
            if not stat.S_ISREG(st.st_mode):
                raise ElfError("is not a regular file", path)
            if st.st_size == 0:
                raise ElfError("is empty, not an ELF file", path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._identity = _identity(st)
        self.file_size = st.st_size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "ElfFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fail(self, message: str) -> ElfError:
        return ElfError(message, self.path)

    def check_unchanged(self) -> None:
        """Raise if the file was replaced, truncated or rewritten since it was opened.

        What was read may mix two versions of the file: the measurement must not be trusted.
        """
        try:
            now = _identity(os.fstat(self._fd))
        except OSError as exc:
            raise self.fail(f"cannot read: {exc.strerror}") from None
        if now != self._identity:
            raise self.fail("changed while it was being read (rewritten or truncated): "
                            "measure it again once the build has finished writing it")

    # -- headers -------------------------------------------------------------------------

    def _parse_headers(self) -> None:
        data = self._read(0, min(self.file_size, 64))
        if data[:8] == AR_MAGIC:
            raise self.fail("is a static archive (ar), not a shared library: check the linked .so")
        if data[:4] != ELF_MAGIC:
            raise self.fail("not an ELF file (bad magic)")
        if self.file_size < 16:
            raise self.fail("truncated ELF file: no room for the ELF identification")
        ei_class, ei_data = data[4], data[5]
        if ei_class not in _LAYOUTS:
            raise self.fail(f"unknown ELF class {ei_class}")
        if ei_data not in (ELFDATA2LSB, ELFDATA2MSB):
            raise self.fail(f"unknown ELF data encoding {ei_data}")
        self.elf_class = 32 if ei_class == ELFCLASS32 else 64
        self.little_endian = ei_data == ELFDATA2LSB
        self.endian = "little" if self.little_endian else "big"
        self.word_size = self.elf_class // 8
        self._bo = "<" if self.little_endian else ">"
        # Arrays come out in host byte order; swap when the file's order differs.
        self._swap = self.little_endian != (sys.byteorder == "little")
        ehdr_fmt, shdr_fmt, phdr_fmt, dyn_fmt = _LAYOUTS[ei_class]
        self._shdr = struct.Struct(self._bo + shdr_fmt)
        self._phdr = struct.Struct(self._bo + phdr_fmt)
        self._dyn = struct.Struct(self._bo + dyn_fmt)
        self._word = struct.Struct(self._bo + ("I" if self.word_size == 4 else "Q"))
        ehdr = struct.Struct(self._bo + ehdr_fmt)
        if self.file_size < 16 + ehdr.size:
            raise self.fail("truncated ELF file: the ELF header is incomplete")
        (self.e_type, self.e_machine, _version, self.e_entry, self.e_phoff, self.e_shoff,
         _flags, _ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum,
         e_shstrndx) = ehdr.unpack_from(data, 16)
        self.sections = self._read_section_headers(e_shentsize, e_shnum, e_shstrndx)
        # Before a measurement stands sections in for missing ones (sections_from_segments).
        self.has_section_headers = bool(self.sections)
        if e_phnum == PN_XNUM and self.sections:
            # Extended numbering: 0xffff or more program headers, counted in section 0.
            e_phnum = self.sections[0].sh_info
        self.segments = self._read_program_headers(e_phentsize, e_phnum)

    def _read_program_headers(self, entsize: int, count: int) -> list[ProgramHeader]:
        if count == 0:
            return []
        if entsize != self._phdr.size:
            raise self.fail(f"bad e_phentsize {entsize} (expected {self._phdr.size})")
        if count > self.file_size // entsize:
            raise self.fail(f"program header count {count} does not fit in the file")
        self._check_range(self.e_phoff, entsize * count, "program header table")
        fields = self._phdr.iter_unpack(self._read(self.e_phoff, entsize * count))
        if self.elf_class == 64:
            return [ProgramHeader(t, fl, o, v, fs, ms, al)
                    for t, fl, o, v, _p, fs, ms, al in fields]
        return [ProgramHeader(t, fl, o, v, fs, ms, al) for t, o, v, _p, fs, ms, fl, al in fields]

    def _read_section_headers(self, entsize: int, count: int, shstrndx: int) -> list[SectionHeader]:
        if self.e_shoff == 0:
            return []
        if entsize != self._shdr.size:
            raise self.fail(f"bad e_shentsize {entsize} (expected {self._shdr.size})")
        self._check_range(self.e_shoff, entsize, "section header table")
        first = self._shdr.unpack(self._read(self.e_shoff, entsize))
        # Extended numbering: with 0xff00 or more sections the real counts live in section 0.
        if count == 0:
            count = first[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = first[6]
        if count > self.file_size // entsize:
            raise self.fail(f"section count {count} does not fit in the file")
        self._check_range(self.e_shoff, entsize * count, "section header table")
        raw = list(self._shdr.iter_unpack(self._read(self.e_shoff, entsize * count)))
        if not 0 <= shstrndx < count:
            raise self.fail(f"section name table index {shstrndx} is out of range")
        strtab = raw[shstrndx]
        if strtab[1] != SHT_STRTAB:
            raise self.fail("section name table is not a string table")
        self._check_range(strtab[4], strtab[5], "section name table")
        name_of = self._names(strtab[4], strtab[5])
        sections = []
        for index, (name, typ, flags, addr, off, size, link, info, align, entsz) in enumerate(raw):
            sections.append(SectionHeader(index, name_of(name), typ, flags, addr, off,
                                          size, link, info, align, entsz))
        for s in sections:
            if s.sh_type != SHT_NOBITS and s.sh_type != SHT_NULL and s.sh_size:
                self._check_range(s.sh_offset, s.sh_size, f"section {s.name}")
        _check_links(self, sections)
        return sections

    def _check_range(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > self.file_size:
            raise self.fail(f"{what} lies past the end of the file (offset 0x{offset:x}, "
                            f"size 0x{size:x}, file size 0x{self.file_size:x}): truncated?")

    # -- raw access ----------------------------------------------------------------------

    def _read(self, offset: int, size: int) -> bytes:
        """`size` bytes at `offset`, which the caller has checked lie inside the file."""
        if size <= 0:
            return b""
        try:
            data = os.pread(self._fd, size, offset)
            while len(data) < size:
                more = os.pread(self._fd, size - len(data), offset + len(data))
                if not more:
                    raise self.fail(f"changed while it was being read: it now ends before "
                                    f"offset 0x{offset + size:x} (truncated by a running "
                                    f"build?)")
                data += more
        except OSError as exc:  # EIO from a failing disk, or a file system gone
            raise self.fail(f"cannot read: {exc.strerror}") from None
        return data

    def _read_into(self, buffer: array, offset: int) -> None:
        """Fill `buffer` with the file's bytes at `offset` (checked by the caller to lie in
        the file). A table is read a slice at a time into one reused buffer, not into a new
        bytes object per slice that an array then copies."""
        if not _PREADV:
            memoryview(buffer).cast("B")[:] = self._read(offset, len(buffer) * buffer.itemsize)
            return
        view = memoryview(buffer).cast("B")
        done = 0
        try:
            while done < len(view):
                got = os.preadv(self._fd, [view[done:]], offset + done)
                if not got:
                    raise self.fail(f"changed while it was being read: it now ends before "
                                    f"offset 0x{offset + len(view):x} (truncated by a "
                                    f"running build?)")
                done += got
        except OSError as exc:
            raise self.fail(f"cannot read: {exc.strerror}") from None

    def _names(self, offset: int, size: int) -> "Callable[[int], str]":
        """name offset -> name, for the string table at [offset, offset + size).

        A table of normal size is read once; a huge one (a sparse file, a crafted header)
        name by name, each read ending at its NUL or after MAX_NAME_BYTES.
        """
        if size <= _WHOLE_STRTAB_BYTES:
            blob = self._read(offset, size)
            return lambda name: _cstring(blob, name)
        end = offset + size

        def name_at(name: int) -> str:
            if name >= size:
                return ""
            start = offset + name
            return self._cstring_at(start, min(end, start + MAX_NAME_BYTES))

        return name_at

    def _cstring_at(self, start: int, end: int) -> str:
        """The NUL-terminated string at `start`, read in growing pieces, cut at `end`."""
        out = b""
        piece = 256
        while start < end:
            chunk = self._read(start, min(piece, end - start))
            nul = chunk.find(b"\0")
            if nul >= 0:
                return printable((out + chunk[:nul]).decode("utf-8", "replace"))
            out += chunk
            start += len(chunk)
            piece *= 4
        return printable(out.decode("utf-8", "replace"))

    def names_at(self, strtab: SectionHeader, offsets: "Sequence[int]") -> list[str]:
        """The names at `offsets` of the string table `strtab`, as `string_table` gives
        them, in bulk: C-level finds, slices and decodes, and `printable` only for a table
        that holds a byte other than printable ASCII."""
        if strtab.sh_type == SHT_NOBITS or not len(offsets):
            return [""] * len(offsets)
        if strtab.sh_size > _WHOLE_STRTAB_BYTES:
            return list(map(self.string_table(strtab), offsets))
        blob = self._read(strtab.sh_offset, strtab.sh_size)
        if max(offsets) >= len(blob) or not blob.endswith(b"\0"):
            return [_cstring(blob, offset) for offset in offsets]
        if kernels is not None:
            # The usual case, printable ASCII names, without a pass over the whole table.
            names_found = kernels.ascii_names(blob, offsets, MAX_NAME_BYTES)
            if names_found is not None:
                return names_found  # type: ignore[no-any-return]
        ends = list(map(blob.find, repeat(b"\0"), offsets))
        if max(map(operator.sub, ends, offsets)) > MAX_NAME_BYTES:
            return [_cstring(blob, offset) for offset in offsets]
        names = map(blob.__getitem__, map(slice, offsets, ends))
        others = blob.translate(None, _PRINTABLE_ASCII)  # the NULs, and what else there is
        if others.count(0) != len(others):
            return [printable(name.decode("utf-8", "replace")) for name in names]
        return list(map(bytes.decode, names))

    def string_table(self, strtab: SectionHeader) -> "Callable[[int], str]":
        """name offset -> name in the string table `strtab`, reading no more than needed."""
        if strtab.sh_type == SHT_NOBITS:
            return lambda name: ""
        return self._names(strtab.sh_offset, strtab.sh_size)

    def section_bytes(self, section: SectionHeader) -> bytes:
        if section.sh_type == SHT_NOBITS:
            return b""
        return self._read(section.sh_offset, section.sh_size)

    def read_at(self, offset: int, size: int) -> bytes:
        self._check_range(offset, size, "read")
        return self._read(offset, size)

    def read_windows(self, offsets: "Iterable[int]", size: int) -> bytes:
        """`size` bytes at each of `offsets` (inside the file), joined: scattered reads of a
        few bytes without reading what lies between them."""
        offsets = list(offsets)
        if not offsets:
            return b""
        low, high = min(offsets), max(offsets)
        self._check_range(low, high - low + size, "read")
        try:
            data = b"".join(map(os.pread, repeat(self._fd), repeat(size), offsets))
        except OSError as exc:
            raise self.fail(f"cannot read: {exc.strerror}") from None
        if len(data) != size * len(offsets):
            raise self.fail("changed while it was being read: it is shorter than it was "
                            "(truncated by a running build?)")
        return data

    def column(self, section: SectionHeader, record_size: int, field_offset: int,
               field_size: int) -> array:
        """One field of every fixed-size record of a section, as an array of unsigned ints."""
        return self.columns(section, record_size, ((field_offset, field_size),))[0]

    def columns(self, section: SectionHeader, record_size: int,
                fields: "tuple[tuple[int, int], ...]",
                where: "tuple[int, Collection[int]] | None" = None,
                zero_holes: "list[int] | None" = None) -> list[array]:
        """Several fields of every fixed-size record, each as an array of unsigned ints.

        Records and fields are aligned to the field's size in every ELF table, so a field is
        a strided slice of the section read as words of that size: a strided copy in C. The
        table is read a slice at a time, so a large table is never held twice (read and
        copied). With `where` = (field index, values), only the records whose field has one
        of the values are kept, slice by slice: memory follows what is kept, not what the
        section header claims (a sparse table of many GiB). With a `zero_holes` list, the
        records of slices in holes of a sparse file (all zero) are left out and their number
        appended to it: what they are is known without reading them.
        """
        typecodes = [{1: "B", 2: _U16, 4: _U32, 8: _U64}[size] for _, size in fields]
        out = [array(code) for code in typecodes]
        if section.sh_type == SHT_NOBITS or not fields:
            return out
        wanted = None if where is None else (where[0], set(where[1]))
        records = section.sh_size // record_size
        per_slice = max(1, _SLICE_BYTES // record_size)
        slices = [(section.sh_offset + first * record_size,
                   section.sh_offset + min(records, first + per_slice) * record_size)
                  for first in range(0, records, per_slice)]
        # A slice in a hole of a sparse file is zeros, and the kernel tells so without the
        # slice being read: no record of it has a wanted value other than 0, and a table
        # whose zero records are known (relocations: R_*_NONE) counts them into zero_holes.
        if hasattr(os, "SEEK_DATA") and (zero_holes is not None if wanted is None
                                         else 0 not in wanted[1]):
            slices = [(start, end) for start, end in slices if not self._hole(start, end)]
        kept_records = sum(end - start for start, end in slices) // record_size
        if zero_holes is not None and wanted is None and kept_records < records:
            zero_holes.append(records - kept_records)
        # The key field first: a slice without a wanted record costs one copy.
        order = range(len(fields)) if wanted is None else (
            wanted[0], *(i for i in range(len(fields)) if i != wanted[0]))
        buffer = array("B")
        if wanted is None:
            # Every record is kept: the columns are made at their size and filled slice by
            # slice (growing them by extend would copy them again and again).
            out = [array(code, [0]) * kept_records for code in typecodes]
        filled = 0
        for start, end in slices:
            part = [array(code) for code in typecodes]
            # The slice as words of each field size: a strided slice of an array is a tight C
            # loop, six times faster than one of a memoryview. Read into an array of the
            # first field's words (reused from slice to slice); other sizes copied from it.
            first_code = typecodes[order[0]]
            size = end - start
            if len(buffer) * buffer.itemsize != size or buffer.typecode != first_code:
                buffer = array(first_code, bytes(size))
            self._read_into(buffer, start)
            as_words: dict[str, array] = {first_code: buffer}
            selector: "bytes | None" = None
            for i in order:
                code, (field_offset, field_size) = typecodes[i], fields[i]
                words = as_words.get(code)
                if words is None:
                    words = as_words[code] = array(code)
                    words.frombytes(memoryview(buffer).cast("B"))
                part[i] = column = words[field_offset // field_size::record_size // field_size]
                if self._swap and column.itemsize > 1:
                    column.byteswap()
                if wanted is not None and i == wanted[0]:
                    selector = _selector(column, wanted[1])
                    if 1 not in selector:
                        break
            if selector is not None:
                if 1 not in selector:
                    continue
                if 0 in selector:
                    part = [compressed(c, selector) for c in part]
            if wanted is None:
                for column, piece in zip(out, part):
                    column[filled:filled + len(piece)] = piece
                filled += (end - start) // record_size
            else:
                for column, piece in zip(out, part):
                    column.extend(piece)
        return out

    def _hole(self, start: int, end: int) -> bool:
        """Whether [start, end) lies in a hole of a sparse file (reads as zeros)."""
        try:
            return os.lseek(self._fd, start, os.SEEK_DATA) >= end
        except OSError as exc:
            # ENXIO: no data from start to the end of the file. Anything else (a file
            # system without SEEK_DATA): read the slice.
            return exc.errno == errno.ENXIO

    def _words(self, offset: int, size: int, word_size: int) -> array:
        """File bytes as host-order unsigned words."""
        words = array({1: "B", 2: _U16, 4: _U32, 8: _U64}[word_size])
        words.frombytes(self._read(offset, size - size % word_size))
        if self._swap and word_size > 1:
            words.byteswap()
        return words

    def _loads(self) -> "tuple[list[int], list[tuple[int, int, int]]]":
        """File-backed PT_LOAD ranges as sorted, disjoint (start, end, file offset), and
        their starts for a bisect. Where segments overlap, the lower one wins."""
        cached = getattr(self, "_load_index", None)
        if cached is not None:
            return cached
        ranges: list[tuple[int, int, int]] = []
        cursor = -1
        for p in sorted((p for p in self.segments if p.p_type == PT_LOAD and p.p_filesz),
                        key=lambda p: p.p_vaddr):
            # Bytes past the end of the file back nothing (the loader would fault on them).
            filesz = min(p.p_filesz, max(0, self.file_size - p.p_offset))
            start, end = p.p_vaddr, p.p_vaddr + filesz
            if end <= cursor or not filesz:
                continue
            if start < cursor:
                start = cursor
            ranges.append((start, end, p.p_offset + (start - p.p_vaddr)))
            cursor = end
        self._load_index = ([r[0] for r in ranges], ranges)
        return self._load_index

    def stored_words(self, vaddrs: "Sequence[int]") -> list[int]:
        """The word stored at each virtual address (0 where no file bytes back it).

        REL and RELR relocations keep their addend in the relocated word itself. The
        addresses inside one PT_LOAD (found by bisect, never by a scan of the program
        headers) are answered by C-level maps over the words they span, read once; an
        address alone in a wide span is read by itself, so the cost follows the addresses,
        not the size a segment claims.
        """
        if not len(vaddrs):
            return []
        size = self.word_size
        starts, ranges = self._loads()
        if not ranges:
            return [0] * len(vaddrs)
        find = partial(bisect_right, starts)
        low, high = min(vaddrs), max(vaddrs)
        first, last = find(low) - 1, find(high) - 1
        if (first == last and first >= 0 and high + size <= ranges[first][1]
                and not any(map(operator.mod, map(operator.sub, vaddrs, repeat(low)),
                                repeat(size)))):
            span = high + size - low
            if span <= max(_SLICE_BYTES, 16 * size * len(vaddrs)):
                start, _end, offset = ranges[first]
                words = self._words(offset + low - start, span, size)
                index = list(map(operator.floordiv, map(operator.sub, vaddrs, repeat(low)),
                                 repeat(size)))
                return list(pick(words, index))
        return [self._word_at(va, find, ranges) for va in vaddrs]

    def _word_at(self, vaddr: int, find: "Callable[[int], int]",
                 ranges: "list[tuple[int, int, int]]") -> int:
        i = find(vaddr) - 1
        if i < 0:
            return 0
        start, end, offset = ranges[i]
        if vaddr + self._word.size > end:
            return 0
        return int(self._word.unpack(self._read(offset + vaddr - start, self._word.size))[0])

    # -- tables --------------------------------------------------------------------------

    def laid_out(self) -> list[SectionHeader]:
        """Allocated sections that occupy addresses, by address.

        .tbss is left out: it has no bytes in the image, and its addresses alias the
        sections after it.
        """
        return sorted((s for s in self.sections
                       if s.is_alloc and s.sh_size and not (s.is_tls and not s.has_file_bytes)),
                      key=lambda s: (s.sh_addr, s.number))

    def section_by_index(self, index: int, what: str) -> SectionHeader:
        if not 0 < index < len(self.sections):
            raise self.fail(f"{what}: section link {index} is out of range")
        return self.sections[index]

    def check_table(self, section: SectionHeader, entsize: int) -> None:
        """A table section's entry size must be the one its type prescribes."""
        if section.sh_entsize != entsize:
            raise self.fail(f"section {section.name}: bogus sh_entsize {section.sh_entsize} "
                            f"(expected {entsize})")
        if section.sh_size % entsize:
            raise self.fail(f"section {section.name}: size {section.sh_size} is not a "
                            f"multiple of its entry size {entsize}")

    def symbol_columns(self, symtab: SectionHeader, fields: "tuple[str, ...] | None" = None,
                       sections: "Collection[int] | None" = None) -> SymbolColumns:
        """The symbol table `symtab` as arrays; `fields` limits which are read (others empty).

        `sections`, when given, keeps only the symbols defined in those sections (by
        st_shndx, which is then read whatever `fields` says).
        """
        if symtab.sh_type not in (SHT_SYMTAB, SHT_DYNSYM):
            raise self.fail(f"section {symtab.name} is not a symbol table")
        entsize, layout = _SYMBOL_FIELDS[self.elf_class]
        self.check_table(symtab, entsize)
        strtab = self.section_by_index(symtab.sh_link, f"symbol table {symtab.name}")
        names = SymbolColumns._fields[1:]
        wanted = [i for i, name in enumerate(names)
                  if fields is None or name in fields or (sections is not None and i == 5)]
        where = None if sections is None else (wanted.index(5), sections)
        read = iter(self.columns(symtab, entsize, tuple(layout[i] for i in wanted), where))
        return SymbolColumns(strtab, *(next(read) if i in wanted else array("B")
                                       for i in range(len(names))))

    def dynamic(self) -> list[tuple[int, int]]:
        """(d_tag, d_val) pairs of the dynamic section, up to DT_NULL (read once)."""
        cached = getattr(self, "_dynamic", None)
        if cached is None:
            cached = self._dynamic = self._read_dynamic()
        return cached

    def _read_dynamic(self) -> list[tuple[int, int]]:
        dyn = next((s for s in self.sections if s.sh_type == SHT_DYNAMIC), None)
        if dyn is not None:
            offset, size = dyn.sh_offset, dyn.sh_size
        else:
            seg = next((p for p in self.segments if p.p_type == PT_DYNAMIC), None)
            if seg is None:
                return []
            offset, size = seg.p_offset, seg.p_filesz
            self._check_range(offset, size, "dynamic segment")
        # Read a slice at a time up to DT_NULL: a segment header may claim a size far
        # beyond the few hundred bytes a dynamic section really has.
        entries: list[tuple[int, int]] = []
        whole = size - size % self._dyn.size
        per_slice = max(1, _SLICE_BYTES // 16 // self._dyn.size) * self._dyn.size
        for first in range(0, whole, per_slice):
            chunk = self._read(offset + first, min(per_slice, whole - first))
            for tag, val in self._dyn.iter_unpack(chunk):
                if tag == DT_NULL:
                    return entries
                entries.append((tag, val))
        return entries

    # -- relocation tables ---------------------------------------------------------------

    def relocation_tables(self) -> list[RelocationTable]:
        """Every dynamic relocation table, as the loader finds it.

        The dynamic section is what the loader follows, so its tags decide where each table
        is and how long; section headers only name them (a header may be hidden, retyped or
        gone). A tag's range that whole sections of the matching type tile is read through
        those sections; otherwise through a header made from the tags, named after the
        section that starts there (or the tag). Allocated relocation sections no tag covers
        (a static executable's .rela.iplt) are read too. A relocation table the reader
        cannot decode is an error naming it: a partial count would undercount silently.
        """
        tags: dict[int, int] = {}
        for tag, value in self.dynamic():
            tags.setdefault(tag, value)
        for tag, name in UNDECODED_RELOCATION_TAGS.items():
            if tag in tags:
                raise self.fail(f"has a {name} relocation table (dynamic tag 0x{tag:x}), which "
                                "this version cannot decode: its relocations would go uncounted")
        for s in self.sections:
            if s.sh_type in UNDECODED_RELOCATION_SECTIONS and s.is_alloc:
                raise self.fail(f"section {s.name} is a {UNDECODED_RELOCATION_SECTIONS[s.sh_type]}"
                                " relocation table, which this version cannot decode")
        ranges: list[tuple[str, str, int, int]] = []  # (tag name, encoding, vaddr, size)
        for addr_tag, size_tag, ent_tag, encoding, name in _DYNAMIC_TABLES:
            if addr_tag not in tags:
                continue
            if size_tag not in tags:
                raise self.fail(f"dynamic section has {name} but no size for it")
            entry = _ENTRY_WORDS[encoding] * self.word_size
            if ent_tag is not None and ent_tag in tags and tags[ent_tag] != entry:
                raise self.fail(f"dynamic section: {name} entry size {tags[ent_tag]} "
                                f"(expected {entry})")
            ranges.append((name, encoding, tags[addr_tag], tags[size_tag]))
        if DT_JMPREL in tags and tags.get(DT_PLTRELSZ, 1):
            kind = tags.get(DT_PLTREL)
            if kind not in (DT_REL, DT_RELA):
                raise self.fail(f"dynamic section: DT_PLTREL {kind} names neither DT_REL nor "
                                "DT_RELA: cannot decode the PLT relocations")
            if DT_PLTRELSZ not in tags:
                raise self.fail("dynamic section has DT_JMPREL but no DT_PLTRELSZ")
            encoding = ENC_RELA if kind == DT_RELA else ENC_REL
            start, size = tags[DT_JMPREL], tags[DT_PLTRELSZ]
            # Some linkers let DT_RELASZ include the PLT relocations that follow (or
            # precede) them; the loader (glibc's elf/dynamic-link.h) applies them once.
            for i, (name, enc, r_start, r_size) in enumerate(ranges):
                if enc != encoding or not r_start <= start < start + size <= r_start + r_size:
                    continue
                if start + size == r_start + r_size:
                    ranges[i] = (name, enc, r_start, r_size - size)
                elif start == r_start:
                    ranges[i] = (name, enc, r_start + size, r_size - size)
            ranges.append(("DT_JMPREL", encoding, start, size))
        tables: list[RelocationTable] = []
        covered: list[tuple[int, int]] = []
        relocation_sections = sorted((s for s in self.sections
                                      if s.sh_type in _SECTION_ENCODING and s.is_alloc),
                                     key=lambda s: s.sh_addr)
        for name, encoding, start, size in ranges:
            if size == 0:
                continue
            covered.append((start, start + size))
            entry = _ENTRY_WORDS[encoding] * self.word_size
            if encoding in _FIXED_SIZE and size % entry:
                raise self.fail(f"dynamic section: {name} size {size} is not a multiple of its "
                                f"entry size {entry}")
            wanted = _SECTION_TYPES[encoding]
            inside = [s for s in relocation_sections
                      if start <= s.sh_addr < start + size and s.sh_size]
            if (inside and all(s.sh_type in wanted for s in inside)
                    and inside[0].sh_addr == start
                    and all(a.sh_addr + a.sh_size == b.sh_addr for a, b in zip(inside, inside[1:]))
                    and inside[-1].sh_addr + inside[-1].sh_size == start + size):
                tables.extend(RelocationTable(s, encoding) for s in inside)
                continue
            offset = self.file_offset(start, size, name)
            at = next((s for s in self.sections if s.is_alloc and s.sh_addr == start
                       and s.sh_size), None)
            dynsym = next((s for s in self.sections if s.sh_type == SHT_DYNSYM), None)
            header = SectionHeader(-1, at.name if at is not None else name, wanted[0],
                                   SHF_ALLOC, start, offset, size,
                                   dynsym.number if dynsym is not None else 0, 0,
                                   self.word_size, entry)
            note = (self._headers_disagree(name, encoding, start, size, at, inside)
                    if self.has_section_headers else "")
            tables.append(RelocationTable(header, encoding, note))
        for s in relocation_sections:
            if s.sh_size and not any(lo < s.sh_addr + s.sh_size and s.sh_addr < hi
                                     for lo, hi in covered):
                tables.append(RelocationTable(s, _SECTION_ENCODING[s.sh_type]))
        return tables

    def _headers_disagree(self, tag: str, encoding: str, start: int, size: int,
                          at: SectionHeader | None, inside: list[SectionHeader]) -> str:
        """What the section headers say of a relocation table the dynamic tags place at
        [start, start + size), where they do not describe it: one line for the report, so
        that a count that differs from readelf's section listing says why."""
        where = f"{tag}: {size} bytes of {encoding} at 0x{start:x}"
        if at is not None and at.sh_type not in _SECTION_TYPES[encoding]:
            said = f"the section headers give {at.name} type {at.type_name}"
        elif inside:
            covered = sum(min(s.sh_addr + s.sh_size, start + size) - s.sh_addr for s in inside)
            names = ", ".join(s.name for s in inside[:3]) + (", ..." if len(inside) > 3 else "")
            said = f"the section headers ({names}) cover {covered} of its bytes"
        else:
            said = "no section header describes it"
        return f"{where}; {said}; read from the dynamic tags, as the loader does"

    def mips_got(self) -> MipsGot | None:
        """The primary GOT of a MIPS file (None without DT_PLTGOT and DT_MIPS_LOCAL_GOTNO,
        or for another machine): its first DT_MIPS_LOCAL_GOTNO entries (lazy resolver,
        module pointer, then local addresses) get the load bias added; the rest, one per
        dynamic symbol from DT_MIPS_GOTSYM to DT_MIPS_SYMTABNO, get the symbol's address.
        Its bytes must be in the file: the count is bounded by them."""
        if self.e_machine != EM_MIPS:
            return None
        tags = dict(self.dynamic())
        if DT_PLTGOT not in tags or DT_MIPS_LOCAL_GOTNO not in tags:
            return None
        address, local = tags[DT_PLTGOT], tags[DT_MIPS_LOCAL_GOTNO]
        first_global = tags.get(DT_MIPS_GOTSYM, 0)
        symbols = tags.get(DT_MIPS_SYMTABNO, first_global)
        if not 0 <= first_global <= symbols:
            raise self.fail(f"DT_MIPS_GOTSYM {first_global} is past DT_MIPS_SYMTABNO {symbols}")
        self.file_offset(address, (local + symbols - first_global) * self.word_size,
                         "MIPS GOT (DT_PLTGOT)")
        at = next((s for s in self.sections if s.sh_addr == address and s.sh_size), None)
        return MipsGot(at.name if at is not None else "DT_PLTGOT", address, local,
                       first_global, symbols - first_global, self.word_size)

    def sections_from_segments(self) -> list[SectionHeader]:
        """Stand-in sections for a file without section headers (sstrip, or
        `llvm-objcopy --strip-sections`): one per PT_LOAD, its writable one cut where
        PT_GNU_RELRO ends and where its zero-fill (.bss) begins. Named in brackets after the
        program headers, so a report never passes them off as real sections."""
        out = [SectionHeader(0, "", SHT_NULL, 0, 0, 0, 0, 0, 0, 0, 0)]
        relro = next(((p.p_vaddr, p.p_vaddr + p.p_memsz) for p in self.segments
                      if p.p_type == PT_GNU_RELRO), None)

        def add(name: str, sh_type: int, flags: int, start: int, end: int, p: ProgramHeader
                ) -> None:
            if end > start:
                out.append(SectionHeader(len(out), name, sh_type, flags, start,
                                         p.p_offset + start - p.p_vaddr, end - start, 0, 0,
                                         1, 0))

        for number, p in enumerate(self.segments):
            if p.p_type != PT_LOAD or not p.p_memsz:
                continue
            rwx = "".join(c if p.p_flags & bit else "-" for c, bit in (("R", 4), ("W", 2),
                                                                         ("X", 1)))
            flags = (SHF_ALLOC | (SHF_WRITE if p.p_flags & PF_W else 0)
                     | (SHF_EXECINSTR if p.p_flags & 1 else 0))
            # Only the bytes actually in the file back a stand-in.
            filesz = max(0, min(p.p_filesz, self.file_size - p.p_offset))
            start, file_end = p.p_vaddr, p.p_vaddr + filesz
            end = max(file_end, p.p_vaddr + p.p_memsz)
            label = f"[PT_LOAD {number} {rwx}"
            if relro is not None and p.p_flags & PF_W and start <= relro[0] < file_end:
                add(label + "]", SHT_PROGBITS, flags, start, relro[0], p)
                cut = min(relro[1], file_end)
                add(label + " PT_GNU_RELRO]", SHT_PROGBITS, flags, relro[0], cut, p)
                start = cut
            add(label + "]", SHT_PROGBITS, flags, start, file_end, p)
            add(label + " zero-fill]", SHT_NOBITS, flags, max(start, file_end), end, p)
        out.extend(self._dynamic_symbol_stand_ins(len(out)))
        return out

    def stand_in_if_headerless(self) -> None:
        """For a file stripped of its section headers (sstrip): the loader needs none, so it
        is read through PT_DYNAMIC, with `sections` cut from the program headers
        (sections_from_segments). An error when nothing tells where its relocations are."""
        if self.sections:
            return
        if not any(p.p_type == PT_DYNAMIC for p in self.segments):
            raise self.fail("has neither section headers nor a dynamic segment: nothing "
                            "tells where its relocations are")
        self.sections = self.sections_from_segments()

    def _dynamic_symbol_stand_ins(self, number: int) -> list[SectionHeader]:
        """[DT_SYMTAB] and [DT_STRTAB], numbered `number` and `number + 1`: the dynamic
        symbols and their names, so that relocations are attributed to exported objects
        as in a library that only lost .symtab. Only when a hash table gives the number of
        symbols (the loader needs none) and both lie in the file; otherwise none, and the
        words stay unattributed. Not SHF_ALLOC: they own no addresses, they name symbols."""
        tags = dict(self.dynamic())
        if DT_SYMTAB not in tags:
            return []
        try:
            strings = self.dynamic_string_table()
            count = self._dynamic_symbol_count(tags) if strings is not None else None
            if not count or strings is None:
                return []
            symbols = self._dynamic_symbol_header(count)
        except ElfError:
            return []  # names are lost, the counts are not: measured as before
        return [symbols._replace(number=number, name="[DT_SYMTAB]", sh_flags=0,
                                 sh_link=number + 1, sh_info=1),
                strings._replace(number=number + 1, name="[DT_STRTAB]", sh_flags=0)]

    def _dynamic_symbol_count(self, tags: dict[int, int]) -> int | None:
        """How many symbols DT_SYMTAB holds, from DT_GNU_HASH (the end of the chain of the
        highest bucket is the last symbol), DT_HASH (nchain) or DT_MIPS_SYMTABNO."""
        if DT_GNU_HASH in tags:
            at = tags[DT_GNU_HASH]
            n_buckets, first, bloom_words, _ = self._words(
                self.file_offset(at, 16, "DT_GNU_HASH"), 16, 4)
            buckets_at = at + 16 + bloom_words * self.word_size
            buckets = self._words(self.file_offset(buckets_at, n_buckets * 4,
                                                   "DT_GNU_HASH buckets"), n_buckets * 4, 4)
            last = max(buckets, default=0)
            if last < first:
                return first  # no hashed symbol: only the unhashed ones before `first`
            chain = buckets_at + n_buckets * 4 + (last - first) * 4
            # A chain ends at the entry with bit 0 set: looked for a slice at a time, by
            # the lane of each word's low byte (C-level), up to the end of the file image.
            low_byte = 0 if self.little_endian else 3  # of each word in the file's order
            while True:
                available = self._loaded_after(chain)
                if available < 4:
                    raise self.fail("DT_GNU_HASH: the last chain has no end")
                size = min(available - available % 4, _SLICE_BYTES)
                raw = self._read(self.file_offset(chain, size, "DT_GNU_HASH chain"), size)
                end = raw[low_byte::4].translate(_ODD).find(1)
                if end >= 0:
                    return last + end + 1
                last += size // 4
                chain += size
        if DT_HASH in tags:
            return int(self._words(self.file_offset(tags[DT_HASH], 8, "DT_HASH"), 8, 4)[1])
        return tags.get(DT_MIPS_SYMTABNO)

    def _loaded_after(self, vaddr: int) -> int:
        """Bytes of the file image from `vaddr` to the end of the load range holding it."""
        starts, ranges = self._loads()
        at = bisect_right(starts, vaddr) - 1
        return ranges[at][1] - vaddr if at >= 0 and vaddr < ranges[at][1] else 0

    def dynamic_string_table(self) -> SectionHeader | None:
        """DT_STRTAB as a string-table header, for files without section headers."""
        tags = dict(self.dynamic())
        if DT_STRTAB not in tags or DT_STRSZ not in tags:
            return None
        offset = self.file_offset(tags[DT_STRTAB], tags[DT_STRSZ], "DT_STRTAB")
        return SectionHeader(-1, "DT_STRTAB", SHT_STRTAB, SHF_ALLOC, tags[DT_STRTAB], offset,
                             tags[DT_STRSZ], 0, 0, 1, 0)

    def dynamic_symbol_sections(self, count: int) -> array:
        """st_shndx of the first `count` symbols at DT_SYMTAB, for files without section
        headers (whose dynamic symbol table has no header to give its length)."""
        entsize, layout = _SYMBOL_FIELDS[self.elf_class]
        return self.column(self._dynamic_symbol_header(count), entsize, *layout[5])

    def _dynamic_symbol_header(self, count: int) -> SectionHeader:
        """The first `count` symbols at DT_SYMTAB as a symbol-table header; they must lie in
        the file."""
        tags = dict(self.dynamic())
        if DT_SYMTAB not in tags:
            raise self.fail("relocations name symbols, but there is no DT_SYMTAB")
        entsize = SYMBOL_ENTSIZE[self.elf_class]
        offset = self.file_offset(tags[DT_SYMTAB], count * entsize, "DT_SYMTAB")
        return SectionHeader(-1, "DT_SYMTAB", SHT_DYNSYM, SHF_ALLOC, tags[DT_SYMTAB], offset,
                             count * entsize, 0, 0, 8, entsize)

    def file_offset(self, vaddr: int, size: int, what: str) -> int:
        """The file offset of [vaddr, vaddr + size), which one PT_LOAD must back with bytes."""
        for p in self.segments:
            if p.p_type == PT_LOAD and p.p_vaddr <= vaddr and vaddr + size <= p.p_vaddr + p.p_filesz:
                offset = p.p_offset + vaddr - p.p_vaddr
                self._check_range(offset, size, what)
                return offset
        raise self.fail(f"{what} at 0x{vaddr:x} (size 0x{size:x}) lies in no loaded part of "
                        "the file")

    def read_relocations(self, table: RelocationTable, zero_holes: "list[int] | None" = None
                         ) -> tuple[Sequence[int], array | None, array | None]:
        """A table's (r_offset, r_info, r_addend) columns, whatever its encoding.

        RELR tables give offsets only (each is a RELATIVE relocation whose addend is the
        stored word); REL tables have no addend column. With a `zero_holes` list, the
        records of a REL or RELA table that lie in holes of a sparse file are left out and
        counted into it (all zero: R_*_NONE entries, which write nothing), so that a table
        claiming GiB of a sparse file costs what its bytes cost.
        """
        header, encoding, word = table.header, table.encoding, self.word_size
        if encoding in RELR_ENCODINGS:
            # lld and ld both write sh_entsize = word size; tolerate 0 from older tools.
            if header.sh_entsize not in (0, word) or header.sh_size % word:
                self.check_table(header, word)
            return self.relr_addresses(header), None, None
        if encoding in (ENC_APS2_REL, ENC_APS2_RELA):
            blob = self.read_at(header.sh_offset, header.sh_size)
            # Relocated words lie in the file-backed image: a bound from the bytes actually
            # in the file, as groups sharing offset delta and info cost none per entry.
            limit = sum(min(p.p_filesz, self.file_size) for p in self.segments
                        if p.p_type == PT_LOAD) // word
            try:
                return decode_aps2(blob, encoding == ENC_APS2_RELA, word, limit)
            except ValueError as exc:
                raise self.fail(f"relocation table {header.name} ({encoding}): {exc}") from None
        has_addend = encoding == ENC_RELA
        entsize = word * (3 if has_addend else 2)
        if header.number >= 0:
            self.check_table(header, entsize)
        fields = ((0, word), (word, word)) + (((2 * word, word),) if has_addend else ())
        offsets_col, infos, *rest = self.columns(header, entsize, fields,
                                                 zero_holes=zero_holes)
        if self.e_machine == EM_MIPS and word == 8:
            infos = mips64_infos(infos, self.little_endian)
        return offsets_col, infos, rest[0] if rest else None

    def relr_addresses(self, table: SectionHeader) -> array:
        """The addresses a RELR section relocates, sorted.

        A valid table relocates words of the file: bounding the count by them stops eight
        bytes of crafted bitmap from becoming 63 addresses each, without limit.
        """
        entries = self.column(table, self.word_size, 0, self.word_size)
        try:
            return decode_relr(entries, self.word_size,
                               limit=len(entries) + self.file_size // self.word_size)
        except ElfError as exc:
            raise self.fail(f"section {table.name}: {exc.message}") from None

    def has_debug_info(self) -> bool:
        """Whether the file holds DWARF (.debug_info, or GNU's compressed .zdebug_info)."""
        return any(s.name in (".debug_info", ".zdebug_info") for s in self.sections)

    def has_symtab(self) -> bool:
        """Whether the file has a .symtab with its bytes (a debug file's names a stripped
        library lost)."""
        return any(s.sh_type == SHT_SYMTAB and s.sh_size and s.has_file_bytes
                   for s in self.sections)

    def soname(self) -> str | None:
        """DT_SONAME's string: from the string table the dynamic section links, or without
        section headers DT_STRTAB's."""
        offset = dict(self.dynamic()).get(DT_SONAME)
        if offset is None:
            return None
        dynsec = next((s for s in self.sections if s.sh_type == SHT_DYNAMIC), None)
        if dynsec is None:
            strtab = self.dynamic_string_table()
            return None if strtab is None else self.string_at(strtab, offset)
        return self.string_at(self.section_by_index(dynsec.sh_link, "dynamic section"), offset)

    def string_at(self, strtab: SectionHeader, offset: int) -> str:
        if strtab.sh_type != SHT_STRTAB:
            raise self.fail(f"section {strtab.name} is not a string table")
        if offset >= strtab.sh_size:
            raise self.fail(f"string offset {offset} lies outside {strtab.name}")
        start = strtab.sh_offset + offset
        return self._cstring_at(start, min(strtab.sh_offset + strtab.sh_size,
                                           start + MAX_NAME_BYTES))

    def build_id(self) -> str | None:
        for s in self.sections:
            if s.name != ".note.gnu.build-id":
                continue
            # A NOBITS note has no bytes in the file: there is no build-id to read.
            if s.sh_type == SHT_NOBITS or s.sh_size < 12:
                return None
            namesz, descsz, ntype = struct.unpack(self._bo + "III",
                                                  self._read(s.sh_offset, 12))
            if ntype != NT_GNU_BUILD_ID:
                return None
            start = 12 + ((namesz + 3) & ~3)
            # Read only the descriptor, and no more than a build-id can be.
            length = min(descsz, _MAX_BUILD_ID, max(0, s.sh_size - start))
            return self._read(s.sh_offset + start, length).hex() or None
        if not self.sections or all(s.name.startswith("[") or not s.name
                                    for s in self.sections):
            return self._build_id_from_segments()
        return None

    def _build_id_from_segments(self) -> str | None:
        """The GNU build-id from PT_NOTE segments, for a file without section headers."""
        for p in self.segments:
            if p.p_type != PT_NOTE or p.p_offset + p.p_filesz > self.file_size:
                continue
            # A note segment is a few dozen bytes; one claiming more is not read whole.
            raw = self._read(p.p_offset, min(p.p_filesz, 1 << 16))
            at = 0
            while at + 12 <= len(raw):
                namesz, descsz, ntype = struct.unpack_from(self._bo + "III", raw, at)
                name_end = at + 12 + ((namesz + 3) & ~3)
                desc_end = name_end + ((descsz + 3) & ~3)
                if desc_end > len(raw):
                    break
                if ntype == NT_GNU_BUILD_ID and raw[at + 12:at + 12 + namesz] == b"GNU\0":
                    return raw[name_end:name_end + descsz].hex() or None
                at = desc_end
        return None


# sh_link of these section types must name a section of one of the given types.
_LINK_TYPES = {
    SHT_SYMTAB: (SHT_STRTAB,),
    SHT_DYNSYM: (SHT_STRTAB,),
    SHT_DYNAMIC: (SHT_STRTAB,),
    SHT_REL: (SHT_SYMTAB, SHT_DYNSYM),
    SHT_RELA: (SHT_SYMTAB, SHT_DYNSYM),
}


def _check_links(elf: ElfFile, sections: list[SectionHeader]) -> None:
    """Every table's sh_link names a section of the right type (0 allowed for relocations)."""
    for s in sections:
        allowed = _LINK_TYPES.get(s.sh_type)
        if allowed is None or (s.sh_link == 0 and s.sh_type in (SHT_REL, SHT_RELA)):
            continue
        if not 0 < s.sh_link < len(sections):
            raise elf.fail(f"section {s.name}: sh_link {s.sh_link} is out of range")
        target = sections[s.sh_link]
        if target.sh_type not in allowed:
            wanted = " or ".join(SHT_NAMES[t] for t in allowed)
            raise elf.fail(f"section {s.name}: sh_link {s.sh_link} names {target.name or '?'} "
                           f"({target.type_name}), not a {wanted} section")


def _selector(key: array, values: "set[int]") -> bytes:
    """1 for each element of `key` that is one of `values`, else 0.

    For halfwords (st_shndx) by C-level passes over the byte lanes: translate each lane to
    0/1 flags and AND them as big integers, so a large table costs no Python step per row.
    """
    if key.itemsize != 2 or not values or max(values) > 0xFFFF:
        return bytes(map(values.__contains__, key))
    raw = key.tobytes()
    low_lane, high_lane = (raw[0::2], raw[1::2]) if sys.byteorder == "little" else (
        raw[1::2], raw[0::2])
    n = len(key)
    result = 0
    for high in {v >> 8 for v in values}:
        lows = {v & 0xFF for v in values if v >> 8 == high}
        low_match = low_lane.translate(bytes(int(b in lows) for b in range(256)))
        high_match = high_lane.translate(bytes(int(b == high) for b in range(256)))
        result |= int.from_bytes(low_match, "little") & int.from_bytes(high_match, "little")
    return result.to_bytes(n, "little")


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells one version of a file from another: device, inode, size, mtime."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _cstring(blob: bytes, offset: int) -> str:
    if offset >= len(blob):
        return ""
    end = blob.find(b"\0", offset, offset + MAX_NAME_BYTES)
    return printable(blob[offset:end if end >= 0 else min(len(blob), offset + MAX_NAME_BYTES)].decode(
        "utf-8", "replace"))


# Encodings of relocation tables, as reports name them.
ENC_REL, ENC_RELA, ENC_RELR = "REL", "RELA", "RELR"
ENC_APS2_REL, ENC_APS2_RELA = "APS2 REL", "APS2 RELA"  # Android packed (SLEB128 groups)
ENC_ANDROID_RELR = "RELR (DT_ANDROID_RELR)"
ENC_RELRHACK = "RELR (relrhack)"
ENC_MIPS_GOT = "MIPS GOT (no records)"  # entries the loader writes by DT_MIPS_* counts
ENCODINGS = (ENC_REL, ENC_RELA, ENC_RELR, ENC_APS2_REL, ENC_APS2_RELA, ENC_ANDROID_RELR,
             ENC_RELRHACK, ENC_MIPS_GOT)
RELR_ENCODINGS = (ENC_RELR, ENC_ANDROID_RELR, ENC_RELRHACK)
_FIXED_SIZE = (ENC_REL, ENC_RELA) + RELR_ENCODINGS
_ENTRY_WORDS = {ENC_REL: 2, ENC_RELA: 3, ENC_RELR: 1, ENC_APS2_REL: 1, ENC_APS2_RELA: 1,
                ENC_ANDROID_RELR: 1, ENC_RELRHACK: 1}
# Section types a table of each encoding may have; the first is the canonical one.
_SECTION_TYPES = {
    ENC_REL: (SHT_REL,), ENC_RELA: (SHT_RELA,), ENC_RELR: (SHT_RELR,),
    ENC_APS2_REL: (SHT_ANDROID_REL,), ENC_APS2_RELA: (SHT_ANDROID_RELA,),
    ENC_ANDROID_RELR: (SHT_ANDROID_RELR, SHT_RELR), ENC_RELRHACK: (SHT_RELR,),
}
_SECTION_ENCODING = {SHT_REL: ENC_REL, SHT_RELA: ENC_RELA, SHT_RELR: ENC_RELR,
                     SHT_ANDROID_REL: ENC_APS2_REL, SHT_ANDROID_RELA: ENC_APS2_RELA,
                     SHT_ANDROID_RELR: ENC_ANDROID_RELR}
# (address tag, size tag, entry-size tag, encoding, name) of each table the loader follows;
# DT_JMPREL is apart: DT_PLTREL tells its encoding.
_DYNAMIC_TABLES = (
    (DT_RELA, DT_RELASZ, DT_RELAENT, ENC_RELA, "DT_RELA"),
    (DT_REL, DT_RELSZ, DT_RELENT, ENC_REL, "DT_REL"),
    (DT_RELR, DT_RELRSZ, DT_RELRENT, ENC_RELR, "DT_RELR"),
    (DT_ANDROID_RELA, DT_ANDROID_RELASZ, None, ENC_APS2_RELA, "DT_ANDROID_RELA"),
    (DT_ANDROID_REL, DT_ANDROID_RELSZ, None, ENC_APS2_REL, "DT_ANDROID_REL"),
    (DT_ANDROID_RELR, DT_ANDROID_RELRSZ, DT_ANDROID_RELRENT, ENC_ANDROID_RELR,
     "DT_ANDROID_RELR"),
    (DT_RELR | DT_RELRHACK_BIT, DT_RELRSZ | DT_RELRHACK_BIT, DT_RELRENT | DT_RELRHACK_BIT,
     ENC_RELRHACK, "DT_RELR (hidden by relrhack)"),
)
SHT_CREL = 0x40000014
UNDECODED_RELOCATION_SECTIONS = {SHT_CREL: "SHT_CREL"}


# The type names MIPS GOT entries are counted under (they have no relocation type).
MIPS_GOT_LOCAL = "MIPS GOT local entry (no record)"
MIPS_GOT_GLOBAL = "MIPS GOT global entry (no record)"


class MipsGot(NamedTuple):
    """The MIPS primary GOT, which the loader writes without relocation records."""

    name: str  # the section at DT_PLTGOT, else "DT_PLTGOT"
    address: int
    local: int  # DT_MIPS_LOCAL_GOTNO entries (two reserved), written with the load bias added
    first_global: int  # DT_MIPS_GOTSYM: the dynamic symbol of the first global entry
    globals: int  # one entry per dynamic symbol from first_global on, its address written
    word: int  # the size of an entry

    @property
    def local_entries(self) -> range:
        """The addresses of the local entries (the reserved ones first)."""
        return range(self.address, self.address + self.local * self.word, self.word)

    @property
    def global_entries(self) -> range:
        """The addresses of the global entries, in the order of their symbols."""
        start = self.address + self.local * self.word
        return range(start, start + self.globals * self.word, self.word)


class RelocationTable(NamedTuple):
    header: SectionHeader  # its section, or one made from the dynamic tags (number -1)
    encoding: str  # one of ENCODINGS
    # Why it was read through the dynamic tags where the file has section headers: they
    # describe it otherwise ("" when they agree, or when the file has none).
    note: str = ""

    @property
    def name(self) -> str:
        return self.header.name
