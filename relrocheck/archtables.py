"""Per-architecture facts about dynamic relocations, as data.

Each table maps an `e_machine` to the names binutils' readelf prints for the relocation types
a dynamic linker processes, and the class each belongs to (see model.RELOCATION_CLASSES).
Static-link-only types are left out on purpose: a type missing from the table is still
counted, under `R_<ARCH>_<number>` and class "other", so nothing is ever dropped.
"""

from __future__ import annotations

from typing import Mapping, Tuple

from relrocheck.record import record

# The class of R_*_NONE: counted, but it writes no word (model.RelocationSummary.no_ops).
NO_OP = "none"


@record
class Arch:
    key: str  # our short name, used in reports
    prefix: str  # readelf's type-name prefix
    types: Mapping[int, Tuple[str, str]]  # type number -> (readelf name, class)
    relative_type: int  # the type RELR entries stand for
    # Types that are relative against symbol 0 and symbolic otherwise (MIPS R_MIPS_REL32).
    relative_without_symbol: Tuple[int, ...] = ()

    def type_name(self, number: int) -> str:
        entry = self.types.get(number)
        return entry[0] if entry else f"{self.prefix}{number}"

    def type_class(self, number: int) -> str:
        entry = self.types.get(number)
        return entry[1] if entry else "other"

    def relocation_class(self, number: int, symbol: int) -> str:
        """The class of one relocation: its type's, unless the type depends on the symbol."""
        if symbol == 0 and number in self.relative_without_symbol:
            return "relative"
        return self.type_class(number)


def _table(prefix: str, entries: Mapping[int, Tuple[str, str]]) -> Mapping[int, Tuple[str, str]]:
    return {number: (prefix + name, cls) for number, (name, cls) in entries.items()}


_X86_64 = _table(
    "R_X86_64_",
    {
        0: ("NONE", NO_OP),
        1: ("64", "symbolic"),
        2: ("PC32", "symbolic"),
        5: ("COPY", "copy"),
        6: ("GLOB_DAT", "symbolic"),
        7: ("JUMP_SLOT", "plt"),
        8: ("RELATIVE", "relative"),
        10: ("32", "symbolic"),
        11: ("32S", "symbolic"),
        16: ("DTPMOD64", "tls"),
        17: ("DTPOFF64", "tls"),
        18: ("TPOFF64", "tls"),
        24: ("PC64", "symbolic"),
        36: ("TLSDESC", "tls"),
        37: ("IRELATIVE", "irelative"),
        38: ("RELATIVE64", "relative"),
    },
)

_I386 = _table(
    "R_386_",
    {
        0: ("NONE", NO_OP),
        1: ("32", "symbolic"),
        2: ("PC32", "symbolic"),
        5: ("COPY", "copy"),
        6: ("GLOB_DAT", "symbolic"),
        7: ("JUMP_SLOT", "plt"),
        8: ("RELATIVE", "relative"),
        14: ("TLS_TPOFF", "tls"),
        35: ("TLS_DTPMOD32", "tls"),
        36: ("TLS_DTPOFF32", "tls"),
        37: ("TLS_TPOFF32", "tls"),
        41: ("TLS_DESC", "tls"),
        42: ("IRELATIVE", "irelative"),
    },
)

_AARCH64 = _table(
    "R_AARCH64_",
    {
        0: ("NONE", NO_OP),
        257: ("ABS64", "symbolic"),
        258: ("ABS32", "symbolic"),
        1024: ("COPY", "copy"),
        1025: ("GLOB_DAT", "symbolic"),
        1026: ("JUMP_SLOT", "plt"),
        1027: ("RELATIVE", "relative"),
        1028: ("TLS_DTPMOD64", "tls"),
        1029: ("TLS_DTPREL64", "tls"),
        1030: ("TLS_TPREL64", "tls"),
        1031: ("TLSDESC", "tls"),
        1032: ("IRELATIVE", "irelative"),
    },
)

_ARM = _table(
    "R_ARM_",
    {
        0: ("NONE", NO_OP),
        2: ("ABS32", "symbolic"),
        3: ("REL32", "symbolic"),
        13: ("TLS_DESC", "tls"),
        17: ("TLS_DTPMOD32", "tls"),
        18: ("TLS_DTPOFF32", "tls"),
        19: ("TLS_TPOFF32", "tls"),
        20: ("COPY", "copy"),
        21: ("GLOB_DAT", "symbolic"),
        22: ("JUMP_SLOT", "plt"),
        23: ("RELATIVE", "relative"),
        160: ("IRELATIVE", "irelative"),
    },
)

_RISCV = _table(
    "R_RISCV_",
    {
        0: ("NONE", NO_OP),
        1: ("32", "symbolic"),
        2: ("64", "symbolic"),
        3: ("RELATIVE", "relative"),
        4: ("COPY", "copy"),
        5: ("JUMP_SLOT", "plt"),
        6: ("TLS_DTPMOD32", "tls"),
        7: ("TLS_DTPMOD64", "tls"),
        8: ("TLS_DTPREL32", "tls"),
        9: ("TLS_DTPREL64", "tls"),
        10: ("TLS_TPREL32", "tls"),
        11: ("TLS_TPREL64", "tls"),
        12: ("TLSDESC", "tls"),
        58: ("IRELATIVE", "irelative"),
    },
)

_PPC64 = _table(
    "R_PPC64_",
    {
        0: ("NONE", NO_OP),
        1: ("ADDR32", "symbolic"),
        19: ("COPY", "copy"),
        20: ("GLOB_DAT", "symbolic"),
        21: ("JMP_SLOT", "plt"),
        22: ("RELATIVE", "relative"),
        38: ("ADDR64", "symbolic"),
        68: ("DTPMOD64", "tls"),
        73: ("TPREL64", "tls"),
        78: ("DTPREL64", "tls"),
        248: ("IRELATIVE", "irelative"),
    },
)

_PPC = _table(
    "R_PPC_",
    {
        0: ("NONE", NO_OP),
        1: ("ADDR32", "symbolic"),
        19: ("COPY", "copy"),
        20: ("GLOB_DAT", "symbolic"),
        21: ("JMP_SLOT", "plt"),
        22: ("RELATIVE", "relative"),
        26: ("REL32", "symbolic"),
        68: ("DTPMOD32", "tls"),
        73: ("TPREL32", "tls"),
        78: ("DTPREL32", "tls"),
        248: ("IRELATIVE", "irelative"),
    },
)

_S390 = _table(
    "R_390_",
    {
        0: ("NONE", NO_OP),
        4: ("32", "symbolic"),
        9: ("COPY", "copy"),
        10: ("GLOB_DAT", "symbolic"),
        11: ("JMP_SLOT", "plt"),
        12: ("RELATIVE", "relative"),
        22: ("64", "symbolic"),
        54: ("TLS_DTPMOD", "tls"),
        55: ("TLS_DTPOFF", "tls"),
        56: ("TLS_TPOFF", "tls"),
        61: ("IRELATIVE", "irelative"),
    },
)

_LOONGARCH = _table(
    "R_LARCH_",
    {
        0: ("NONE", NO_OP),
        1: ("32", "symbolic"),
        2: ("64", "symbolic"),
        3: ("RELATIVE", "relative"),
        4: ("COPY", "copy"),
        5: ("JUMP_SLOT", "plt"),
        6: ("TLS_DTPMOD32", "tls"),
        7: ("TLS_DTPMOD64", "tls"),
        8: ("TLS_DTPREL32", "tls"),
        9: ("TLS_DTPREL64", "tls"),
        10: ("TLS_TPREL32", "tls"),
        11: ("TLS_TPREL64", "tls"),
        12: ("IRELATIVE", "irelative"),
    },
)

# MIPS: one record is one write whatever the 2nd and 3rd packed types of MIPS64 say
# (REL32 with R_MIPS_64 is a 64-bit REL32); the reader keeps the first type only.
_MIPS = _table(
    "R_MIPS_",
    {
        0: ("NONE", NO_OP),
        2: ("32", "symbolic"),
        3: ("REL32", "symbolic"),
        18: ("64", "symbolic"),
        38: ("TLS_DTPMOD32", "tls"),
        39: ("TLS_DTPREL32", "tls"),
        40: ("TLS_DTPMOD64", "tls"),
        41: ("TLS_DTPREL64", "tls"),
        47: ("TLS_TPREL32", "tls"),
        48: ("TLS_TPREL64", "tls"),
        51: ("GLOB_DAT", "symbolic"),
        126: ("COPY", "copy"),
        127: ("JUMP_SLOT", "plt"),
        128: ("IRELATIVE", "irelative"),
    },
)

# e_machine -> Arch. PowerPC64 is one machine for both byte orders.
ARCHES: Mapping[int, Arch] = {
    62: Arch("x86_64", "R_X86_64_", _X86_64, 8),
    3: Arch("i386", "R_386_", _I386, 8),
    183: Arch("aarch64", "R_AARCH64_", _AARCH64, 1027),
    40: Arch("arm", "R_ARM_", _ARM, 23),
    243: Arch("riscv", "R_RISCV_", _RISCV, 3),
    21: Arch("ppc64", "R_PPC64_", _PPC64, 22),
    20: Arch("ppc", "R_PPC_", _PPC, 22),
    22: Arch("s390", "R_390_", _S390, 12),
    258: Arch("loongarch", "R_LARCH_", _LOONGARCH, 3),
    8: Arch("mips", "R_MIPS_", _MIPS, 3, relative_without_symbol=(3,)),
}


def arch_for(machine: int) -> Arch | None:
    return ARCHES.get(machine)
