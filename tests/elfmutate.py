"""Structure-aware mutation of ELF files, for the fuzzing tests.

A byte-level fuzzer mostly breaks the ELF header's magic or lands in code bytes; this one
knows where the fields that steer a reader are: the ELF header, section and program
headers, dynamic entries, RELR words, symbol values and sizes, and the bytes of .debug_*
sections. Each mutation sets one field to a value a reader must survive: 0, all ones, the
file size and its neighbours, a power of two, a near miss of the old value.

The layouts are written out here from the ELF specification (not taken from relrocheck),
for both classes and byte orders.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

# (offset, size) of the fields, per ELF class.
EHDR = {
    64: {"e_type": (16, 2), "e_machine": (18, 2), "e_version": (20, 4), "e_entry": (24, 8),
         "e_phoff": (32, 8), "e_shoff": (40, 8), "e_flags": (48, 4), "e_ehsize": (52, 2),
         "e_phentsize": (54, 2), "e_phnum": (56, 2), "e_shentsize": (58, 2),
         "e_shnum": (60, 2), "e_shstrndx": (62, 2), "ei_class": (4, 1), "ei_data": (5, 1)},
    32: {"e_type": (16, 2), "e_machine": (18, 2), "e_version": (20, 4), "e_entry": (24, 4),
         "e_phoff": (28, 4), "e_shoff": (32, 4), "e_flags": (36, 4), "e_ehsize": (40, 2),
         "e_phentsize": (42, 2), "e_phnum": (44, 2), "e_shentsize": (46, 2),
         "e_shnum": (48, 2), "e_shstrndx": (50, 2), "ei_class": (4, 1), "ei_data": (5, 1)},
}
SHDR = {
    64: (64, {"sh_name": (0, 4), "sh_type": (4, 4), "sh_flags": (8, 8), "sh_addr": (16, 8),
              "sh_offset": (24, 8), "sh_size": (32, 8), "sh_link": (40, 4), "sh_info": (44, 4),
              "sh_addralign": (48, 8), "sh_entsize": (56, 8)}),
    32: (40, {"sh_name": (0, 4), "sh_type": (4, 4), "sh_flags": (8, 4), "sh_addr": (12, 4),
              "sh_offset": (16, 4), "sh_size": (20, 4), "sh_link": (24, 4), "sh_info": (28, 4),
              "sh_addralign": (32, 4), "sh_entsize": (36, 4)}),
}
PHDR = {
    64: (56, {"p_type": (0, 4), "p_flags": (4, 4), "p_offset": (8, 8), "p_vaddr": (16, 8),
              "p_paddr": (24, 8), "p_filesz": (32, 8), "p_memsz": (40, 8), "p_align": (48, 8)}),
    32: (32, {"p_type": (0, 4), "p_offset": (4, 4), "p_vaddr": (8, 4), "p_paddr": (12, 4),
              "p_filesz": (16, 4), "p_memsz": (20, 4), "p_flags": (24, 4), "p_align": (28, 4)}),
}
SYM = {
    64: (24, {"st_name": (0, 4), "st_info": (4, 1), "st_other": (5, 1), "st_shndx": (6, 2),
              "st_value": (8, 8), "st_size": (16, 8)}),
    32: (16, {"st_name": (0, 4), "st_value": (4, 4), "st_size": (8, 4), "st_info": (12, 1),
              "st_other": (13, 1), "st_shndx": (14, 2)}),
}
SHT_NOBITS, SHT_DYNAMIC, SHT_RELR, SHT_SYMTAB, SHT_DYNSYM = 8, 6, 19, 2, 11
# Section types and dynamic tags a mutation may switch to: the ones a reader acts on.
SECTION_TYPES = (0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 14, 15, 16, 18, 19, 0x6FFFFFF6, 0xFFFFFFFF)
DYNAMIC_TAGS = (0, 1, 5, 6, 7, 8, 9, 10, 11, 14, 15, 17, 18, 19, 20, 22, 23, 24, 29, 30, 35,
                36, 37, 0x6FFFFEF5, 0x6FFFFFF9, 0x6FFFFFFB, 0x6FFFFFFF)
SEGMENT_TYPES = (0, 1, 2, 3, 4, 6, 7, 0x6474E550, 0x6474E551, 0x6474E552, 0xFFFFFFFF)


@dataclass(frozen=True)
class Section:
    number: int
    name: str
    sh_type: int
    header: int  # file offset of its section header
    offset: int
    size: int


class Layout:
    """Where the fields of one (well-formed) ELF file are."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
            raise ValueError("not an ELF file this mutator knows")
        self.data = data
        self.bits = 64 if data[4] == 2 else 32
        self.order = "<" if data[5] == 1 else ">"
        self.word = self.bits // 8
        e = EHDR[self.bits]
        self.e_phoff = self._get(*e["e_phoff"], 0)
        self.e_shoff = self._get(*e["e_shoff"], 0)
        self.e_phnum = self._get(*e["e_phnum"], 0)
        self.e_shnum = self._get(*e["e_shnum"], 0)
        shstrndx = self._get(*e["e_shstrndx"], 0)
        size, fields = SHDR[self.bits]
        raw = []
        for i in range(self.e_shnum):
            base = self.e_shoff + i * size
            raw.append((base, *(self._get(*fields[f], base) for f in
                                ("sh_name", "sh_type", "sh_offset", "sh_size"))))
        names_at = raw[shstrndx][3] if shstrndx < len(raw) else 0
        self.sections = []
        for i, (base, name, sh_type, offset, sh_size) in enumerate(raw):
            start = names_at + name
            end = data.find(b"\0", start)
            self.sections.append(Section(i, data[start:end].decode("latin-1"), sh_type, base,
                                         offset, sh_size))

    def _get(self, offset: int, size: int, base: int) -> int:
        code = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        return struct.unpack_from(self.order + code, self.data, base + offset)[0]

    def of_type(self, *types: int) -> list[Section]:
        return [s for s in self.sections if s.sh_type in types and s.size]

    def named(self, prefix: str) -> list[Section]:
        return [s for s in self.sections if s.name.startswith(prefix)
                and s.sh_type != SHT_NOBITS and s.size]


def _value(rng: random.Random, old: int, size: int, file_size: int) -> int:
    top = (1 << (8 * size)) - 1
    choices = (
        0, 1, top, top - 1, 1 << (8 * size - 1), rng.randrange(top + 1), old + 1, old - 1,
        old + rng.randrange(1, 64), old * 2, old ^ (1 << rng.randrange(8 * size)),
        file_size, file_size - 1, file_size + 1, file_size + rng.randrange(1 << 20),
        1 << rng.randrange(8 * size), old // 2,
    )
    return rng.choice(choices) & top


class Mutator:
    """Mutations of one source file; `mutate` returns the new bytes and what was done."""

    KINDS = ("ehdr", "shdr", "phdr", "dynamic", "relr", "symbol", "debug", "truncate")
    WEIGHTS = (14, 26, 16, 12, 10, 14, 5, 3)

    def __init__(self, data: bytes) -> None:
        self.layout = Layout(data)
        lay = self.layout
        self.dynamic = lay.of_type(SHT_DYNAMIC)
        self.relr = lay.of_type(SHT_RELR)
        self.symbols = lay.of_type(SHT_DYNSYM, SHT_SYMTAB)
        self.debug = lay.named(".debug_")

    def mutate(self, rng: random.Random, count: int = 0) -> tuple[bytes, list[str]]:
        data = bytearray(self.layout.data)
        done: list[str] = []
        for _ in range(count or rng.choice((1, 1, 1, 2, 3))):
            kind = rng.choices(self.KINDS, self.WEIGHTS)[0]
            what = getattr(self, "_" + kind)(rng, data)
            if what:
                done.append(what)
        if not done:
            done.append(self._shdr(rng, data))
        return bytes(data), done

    def _put(self, data: bytearray, at: int, size: int, value: int) -> None:
        code = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        if 0 <= at and at + size <= len(data):
            struct.pack_into(self.layout.order + code, data, at, value)

    def _old(self, data: bytearray, at: int, size: int) -> int:
        code = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        if 0 <= at and at + size <= len(data):
            return struct.unpack_from(self.layout.order + code, data, at)[0]
        return 0

    def _field(self, rng: random.Random, data: bytearray, at: int, size: int, name: str,
               special: tuple[int, ...] = ()) -> str:
        old = self._old(data, at, size)
        if special and rng.random() < 0.5:
            value = rng.choice(special)
        else:
            value = _value(rng, old, size, len(data))
        self._put(data, at, size, value)
        return f"{name}@0x{at:x}: 0x{old:x} -> 0x{value:x}"

    def _ehdr(self, rng: random.Random, data: bytearray) -> str:
        name, (offset, size) = rng.choice(sorted(EHDR[self.layout.bits].items()))
        return self._field(rng, data, offset, size, name)

    def _shdr(self, rng: random.Random, data: bytearray) -> str:
        section = rng.choice(self.layout.sections)
        _size, fields = SHDR[self.layout.bits]
        name, (offset, size) = rng.choice(sorted(fields.items()))
        special = SECTION_TYPES if name == "sh_type" else ()
        return self._field(rng, data, section.header + offset, size,
                           f"{section.name or section.number}.{name}", special)

    def _phdr(self, rng: random.Random, data: bytearray) -> str:
        if not self.layout.e_phnum:
            return ""
        entsize, fields = PHDR[self.layout.bits]
        index = rng.randrange(self.layout.e_phnum)
        name, (offset, size) = rng.choice(sorted(fields.items()))
        special = SEGMENT_TYPES if name == "p_type" else ()
        return self._field(rng, data, self.layout.e_phoff + index * entsize + offset, size,
                           f"phdr[{index}].{name}", special)

    def _entry(self, sections: list[Section], entsize: int, rng: random.Random) -> int:
        section = rng.choice(sections)
        count = max(1, section.size // entsize)
        return section.offset + rng.randrange(count) * entsize

    def _dynamic(self, rng: random.Random, data: bytearray) -> str:
        if not self.dynamic:
            return ""
        word = self.layout.word
        at = self._entry(self.dynamic, 2 * word, rng)
        if rng.random() < 0.5:
            return self._field(rng, data, at, word, "d_tag", DYNAMIC_TAGS)
        return self._field(rng, data, at + word, word, "d_val")

    def _relr(self, rng: random.Random, data: bytearray) -> str:
        if not self.relr:
            return ""
        word = self.layout.word
        at = self._entry(self.relr, word, rng)
        old = self._old(data, at, word)
        top = (1 << 8 * word) - 1
        value = rng.choice((top, old | 1, old & ~1, old ^ (1 << rng.randrange(8 * word)),
                            _value(rng, old, word, len(data)), 1, 0))
        self._put(data, at, word, value & top)
        return f"relr@0x{at:x}: 0x{old:x} -> 0x{value & top:x}"

    def _symbol(self, rng: random.Random, data: bytearray) -> str:
        if not self.symbols:
            return ""
        entsize, fields = SYM[self.layout.bits]
        at = self._entry(self.symbols, entsize, rng)
        name = rng.choice(("st_value", "st_value", "st_size", "st_size", "st_shndx",
                           "st_info", "st_name"))
        offset, size = fields[name]
        return self._field(rng, data, at + offset, size, name)

    def _debug(self, rng: random.Random, data: bytearray) -> str:
        if not self.debug:
            return ""
        section = rng.choice(self.debug)
        done = []
        for _ in range(rng.randint(1, 8)):
            at = section.offset + rng.randrange(section.size)
            value = rng.choice((0, 0xFF, 0x80, rng.randrange(256)))
            if at >= len(data):  # an earlier mutation cut the file
                continue
            data[at] = value
            done.append(f"0x{at:x}=0x{value:x}")
        return f"{section.name} bytes " + ",".join(done)

    def _truncate(self, rng: random.Random, data: bytearray) -> str:
        keep = rng.randrange(len(data))
        del data[keep:]
        return f"truncated to {keep}"
