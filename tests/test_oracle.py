"""The oracle's own proof: its readings of readelf/nm match facts fixed independently of it.

Those facts come from the fixture sources (40 string pointers are 40 relocations), from the
dynamic section (DT_RELASZ / DT_RELAENT relocations in .rela.dyn), from the RELR encoding
in the psABI (decoded here from the raw section words), and from each architecture's
relocation names. Later tests trust the oracle only because these pass.
"""

from __future__ import annotations

import struct
from pathlib import Path

import oracle
import pytest
from libbuild import CROSS_TARGETS, BuildError, build_library, fixture, have_cross, strip_copy

LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")


# --- built fixtures, once per module --------------------------------------------------------


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oracle")


@pytest.fixture(scope="module")
def pointer_tables(build_dir: Path) -> Path:
    return build_library(build_dir, "pointer_tables", fixture("pointer_tables.c"))


@pytest.fixture(scope="module")
def pointer_tables_relr(build_dir: Path) -> Path:
    try:
        return build_library(
            build_dir / "relr",
            "pointer_tables",
            fixture("pointer_tables.c"),
            flags=["-Wl,-z,pack-relative-relocs"],
        )
    except BuildError as exc:
        pytest.skip(f"host linker cannot pack relative relocations: {exc}")


# Per triple, named independently of the oracle's own machine table: ELF class, RELATIVE,
# symbolic word-sized, PLT and IRELATIVE names, and the relocation the global-dynamic access
# to an own TLS variable needs (lld relaxes nothing in a shared object).
ARCH = {
    "x86_64-linux-gnu": (
        "ELF64",
        "R_X86_64_RELATIVE",
        "R_X86_64_64",
        "R_X86_64_JUMP_SLOT",
        "R_X86_64_IRELATIVE",
        "R_X86_64_DTPMOD64",
    ),
    "i686-linux-gnu": (
        "ELF32",
        "R_386_RELATIVE",
        "R_386_32",
        "R_386_JUMP_SLOT",
        "R_386_IRELATIVE",
        "R_386_TLS_DTPMOD32",
    ),
    "aarch64-linux-gnu": (
        "ELF64",
        "R_AARCH64_RELATIVE",
        "R_AARCH64_ABS64",
        "R_AARCH64_JUMP_SLOT",
        "R_AARCH64_IRELATIVE",
        "R_AARCH64_TLSDESC",
    ),
    "armv7a-linux-gnueabihf": (
        "ELF32",
        "R_ARM_RELATIVE",
        "R_ARM_ABS32",
        "R_ARM_JUMP_SLOT",
        "R_ARM_IRELATIVE",
        "R_ARM_TLS_DTPMOD32",
    ),
    "riscv64-linux-gnu": (
        "ELF64",
        "R_RISCV_RELATIVE",
        "R_RISCV_64",
        "R_RISCV_JUMP_SLOT",
        "R_RISCV_IRELATIVE",
        "R_RISCV_TLS_DTPMOD64",
    ),
    "powerpc64-linux-gnu": (
        "ELF64",
        "R_PPC64_RELATIVE",
        "R_PPC64_ADDR64",
        "R_PPC64_JMP_SLOT",
        "R_PPC64_IRELATIVE",
        "R_PPC64_DTPMOD64",
    ),
    "powerpc64le-linux-gnu": (
        "ELF64",
        "R_PPC64_RELATIVE",
        "R_PPC64_ADDR64",
        "R_PPC64_JMP_SLOT",
        "R_PPC64_IRELATIVE",
        "R_PPC64_DTPMOD64",
    ),
    "s390x-linux-gnu": (
        "ELF64",
        "R_390_RELATIVE",
        "R_390_64",
        "R_390_JMP_SLOT",
        "R_390_IRELATIVE",
        "R_390_TLS_DTPMOD",
    ),
}

# Linker flag that packs RELATIVE relocations into RELR, per linker.
RELR_FLAG = {"s390x-linux-gnu": "-Wl,-z,pack-relative-relocs"}
LLD_RELR_FLAG = "-Wl,--pack-dyn-relocs=relr"


def cross_build(tmp_path: Path, target: str, flags: tuple[str, ...] = ()) -> Path:
    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    return build_library(tmp_path, "cross", fixture("cross.c"), flags=flags, target=target)


def symbol(path: Path, name: str, dynamic: bool = False) -> oracle.SymbolInfo:
    matches = [s for s in oracle.symbols(path, dynamic=dynamic) if s["name"] == name]
    assert len(matches) == 1, f"{name}: {matches}"
    return matches[0]


# --- helpers only the tests need -----------------------------------------------------------


def decode_relr(words: list[int], word_size: int) -> list[int]:
    """The psABI RELR decoding: an even word is an address (relocated; the bitmap base
    follows it); an odd word is a bitmap of the next 8*word_size-1 words after the base."""
    addresses: list[int] = []
    base = 0
    for word in words:
        if word & 1 == 0:
            addresses.append(word)
            base = word + word_size
            continue
        bits, i = word >> 1, 0
        while bits:
            if bits & 1:
                addresses.append(base + i * word_size)
            bits >>= 1
            i += 1
        base += (8 * word_size - 1) * word_size
    return addresses


def relr_words(path: Path, table: str) -> tuple[list[int], int]:
    header = oracle.elf_header(path)
    word_size = 8 if header["Class"] == "ELF64" else 4
    order = "<" if "little endian" in header["Data"] else ">"
    raw = oracle.section_bytes(path, table)
    fmt = f"{order}{len(raw) // word_size}{'Q' if word_size == 8 else 'I'}"
    return list(struct.unpack(fmt, raw)), word_size


def dynamic_size(path: Path, tag: str) -> int:
    """A DT_*SZ / DT_*ENT value, which readelf prints as "N (bytes)"."""
    return int(oracle.dynamic(path)[tag][0].split()[0])


def assert_tables_match_dynamic_section(path: Path) -> None:
    """Entry counts the oracle parsed equal what the loader will read: DT_RELASZ/DT_RELAENT
    (or REL), DT_PLTRELSZ/entry size, DT_RELRSZ/DT_RELRENT words."""
    tags = oracle.dynamic(path)
    kind = "RELA" if "RELA" in tags or tags.get("PLTREL") == ["RELA"] else "REL"
    entry = dynamic_size(path, f"{kind}ENT") if f"{kind}ENT" in tags else None
    by_table = oracle.relocation_table_counts(path)
    dyn_tables = [t for t in by_table if t.endswith(".dyn") and not t.startswith(".relr")]
    plt_tables = [t for t in by_table if t.endswith(".plt")]
    if entry is not None:
        assert sum(by_table[t] for t in dyn_tables) == dynamic_size(path, f"{kind}SZ") // entry
    if plt_tables:
        plt_entry = entry or (24 if kind == "RELA" else 8)
        assert sum(by_table[t] for t in plt_tables) == dynamic_size(path, "PLTRELSZ") // plt_entry
    if "RELR" in tags:
        words = dynamic_size(path, "RELRSZ") // dynamic_size(path, "RELRENT")
        assert oracle.table_entries(path)[".relr.dyn"] == words


# --- host fixtures -------------------------------------------------------------------------


def test_string_pointer_table_has_one_relocation_per_entry(pointer_tables: Path) -> None:
    per_symbol = oracle.relocations_per_symbol(pointer_tables)
    assert per_symbol["names"] == 40
    assert per_symbol["const_names"] == 12
    assert per_symbol["file_ops"] == 4  # name, open, close, description
    assert per_symbol["exported_counter_ptr"] == 1
    assert per_symbol["hidden_counter_ptr"] == 1
    assert per_symbol["plain_data"] == 0
    assert per_symbol["scratch_buffer"] == 0


def test_nm_places_tables_in_the_sections_the_compiler_chose(pointer_tables: Path) -> None:
    assert symbol(pointer_tables, "names")["section"] == ".data"
    assert symbol(pointer_tables, "const_names")["section"] == ".data.rel.ro"
    assert symbol(pointer_tables, "big_table")["section"] == ".data.rel.ro"
    assert symbol(pointer_tables, "scratch_buffer")["section"] == ".bss"
    assert symbol(pointer_tables, "file_ops")["cls"] == "d"  # local: .symtab only
    assert symbol(pointer_tables, "names")["size"] == 40 * 8
    sections = oracle.sections(pointer_tables)
    assert sections[".bss"]["type"] == "NOBITS" and sections[".bss"]["size"] >= 65536
    assert "W" in sections[".data.rel.ro"]["flags"]


def test_symbolic_and_relative_relocations_are_told_apart(pointer_tables: Path) -> None:
    exported_ptr = symbol(pointer_tables, "exported_counter_ptr")["address"]
    hidden_ptr = symbol(pointer_tables, "hidden_counter_ptr")["address"]
    by_offset = {r.offset: r for r in oracle.relocations(pointer_tables)}
    assert by_offset[exported_ptr].type == "R_X86_64_64"
    assert by_offset[exported_ptr].symbol == "exported_counter"
    assert by_offset[exported_ptr].addend == 0
    assert by_offset[hidden_ptr].type == "R_X86_64_RELATIVE"
    assert by_offset[hidden_ptr].symbol is None
    assert by_offset[hidden_ptr].addend == symbol(pointer_tables, "hidden_counter")["address"]


def test_relative_count_matches_dt_relacount(pointer_tables: Path) -> None:
    # GNU ld sorts RELATIVE relocations first and records their number in DT_RELACOUNT.
    relacount = int(oracle.dynamic(pointer_tables)["RELACOUNT"][0])
    assert oracle.relocation_type_counts(pointer_tables)["R_X86_64_RELATIVE"] == relacount
    assert_tables_match_dynamic_section(pointer_tables)


def test_one_pointer_in_a_big_struct_relocates_one_page(tmp_path: Path) -> None:
    source = """
    struct big { const char *head; char payload[4 << 20]; const char *tail; };
    const struct big big = {"head", {1}, "tail"};
    """
    # -nostdlib: no crt files, so the two pointers are the only relocations.
    lib = build_library(tmp_path, "big", source, flags=["-nostdlib"])
    big = symbol(lib, "big")
    assert oracle.relocation_total(lib) == 2
    for page_size in (4096, 65536):
        assert oracle.pages_with_relocations(lib, page_size) == 2
        span = (big["address"] + big["size"] - 1) // page_size - big["address"] // page_size
        assert span >= (4 << 20) // page_size
    assert oracle.relocations_per_symbol(lib)["big"] == 2


def test_cxx_vtables_relocate_every_slot_but_offset_to_top(build_dir: Path) -> None:
    lib = build_library(build_dir, "cxx", fixture("cxx_vtables.cpp"), lang="c++")
    per_symbol = oracle.relocations_per_symbol(lib)
    # Itanium C++ ABI: offset-to-top (a constant), typeinfo pointer, then one slot per
    # virtual function: D1 and D0 destructors, area, name (+ circumference for Circle).
    assert per_symbol["_ZTVN7fixture6SquareE"] == 1 + 4
    assert per_symbol["_ZTVN7fixture6CircleE"] == 1 + 5
    # __si_class_type_info: its vtable, the name, the base class typeinfo.
    assert per_symbol["_ZTIN7fixture6SquareE"] == 3
    assert per_symbol["_ZTIN7fixture6CircleE"] == 3


def test_tls_symbols_are_attributed_inside_the_tdata_image(build_dir: Path) -> None:
    lib = build_library(build_dir, "tls", fixture("tls.c"))
    per_symbol = oracle.relocations_per_symbol(lib)
    assert per_symbol["tls_name"] == 1  # pointer to a string: relocated image
    assert per_symbol["tls_counter_ptr"] == 1  # pointer to an exported global
    assert per_symbol["tls_value"] == 0
    # .tbss offsets would translate onto the sections after .tdata; they must count 0.
    assert per_symbol["tls_buffer"] == 0
    assert symbol(lib, "tls_buffer")["section"] == ".tbss"
    assert "tls_name" not in oracle.relocations_per_symbol(lib, include_tls=False)


def test_stripped_library_keeps_dynamic_symbols(pointer_tables: Path) -> None:
    stripped = strip_copy(pointer_tables)
    assert oracle.symbols(stripped) == []
    assert ".symtab" not in oracle.sections(stripped)
    per_symbol = oracle.relocations_per_symbol(stripped, dynamic=True)
    assert per_symbol["names"] == 40
    assert "file_ops" not in per_symbol  # local symbols live only in .symtab
    assert oracle.relocations(stripped) == oracle.relocations(pointer_tables)


def test_dynamic_tags_and_flags(tmp_path: Path, pointer_tables: Path) -> None:
    tags = oracle.dynamic(pointer_tables)
    assert tags["SONAME"] == ["libpointer_tables.so"]
    assert "INIT" in tags  # crti.o's _init
    assert "TEXTREL" not in oracle.dynamic_flags(pointer_tables)
    now = build_library(tmp_path, "now", fixture("pointer_tables.c"), flags=["-Wl,-z,now"])
    assert {"BIND_NOW", "NOW"} <= oracle.dynamic_flags(now)


def test_textrel_is_reported_with_relocations_into_text(tmp_path: Path) -> None:
    if not have_cross("i686-linux-gnu"):
        pytest.skip("no clang/lld toolchain for i686")
    source = "int counter = 1; int get(void) { return counter; }"
    # Non-PIC i386 code addresses `counter` absolutely: the loader must patch .text.
    lib = build_library(
        tmp_path, "textrel", source, target="i686-linux-gnu", flags=["-fno-PIC", "-Wl,-z,notext"]
    )
    assert "TEXTREL" in oracle.dynamic_flags(lib)
    assert oracle.relocations_per_section(lib)[".text"] >= 1


def test_segments_cover_their_sections(pointer_tables: Path) -> None:
    sections = oracle.sections(pointer_tables)
    writable_loads = [
        s for s in oracle.segments(pointer_tables) if s["type"] == "LOAD" and "W" in s["flags"]
    ]
    assert len(writable_loads) == 1
    rw = writable_loads[0]
    data = sections[".data"]
    assert rw["address"] <= data["address"] < rw["address"] + rw["file_size"]
    assert rw["memory_size"] > rw["file_size"]  # .bss
    relro = oracle.relro_range(pointer_tables)
    assert relro is not None
    assert relro[0] <= sections[".data.rel.ro"]["address"] < relro[1]
    assert not relro[0] <= data["address"] < relro[1]


# --- RELR ----------------------------------------------------------------------------------


@pytest.mark.skipif(not LIBC.exists(), reason="Debian x86-64 libc not present")
def test_libc_relr_entries_match_readelf_count_and_psabi_decoding() -> None:
    relr = [r for r in oracle.relocations(LIBC) if r.table == ".relr.dyn"]
    assert relr, "glibc 2.36+ on Debian 12 is linked with RELR"
    assert len(relr) == oracle.relr_announced_offsets(LIBC)[".relr.dyn"]
    assert {r.type for r in relr} == {"R_X86_64_RELATIVE"}
    assert all(r.symbol is None and r.addend is None for r in relr)
    # readelf prints "free@@GLIBC_2.2.5": the oracle keys symbols by the bare name, like nm.
    symbols = {r.symbol for r in oracle.relocations(LIBC) if r.symbol}
    assert "free" in symbols and not any("@" in s for s in symbols)
    words, word_size = relr_words(LIBC, ".relr.dyn")
    assert [r.offset for r in relr] == decode_relr(words, word_size)
    assert_tables_match_dynamic_section(LIBC)


def test_packed_and_unpacked_builds_agree(pointer_tables: Path, pointer_tables_relr: Path) -> None:
    packed = oracle.relocation_type_counts(pointer_tables_relr)
    assert oracle.relocation_table_counts(pointer_tables_relr)[".relr.dyn"] > 0
    assert packed == oracle.relocation_type_counts(pointer_tables)
    assert oracle.relocations_per_symbol(pointer_tables_relr) == oracle.relocations_per_symbol(
        pointer_tables
    )
    words, word_size = relr_words(pointer_tables_relr, ".relr.dyn")
    decoded = [r.offset for r in oracle.relocations(pointer_tables_relr) if r.table == ".relr.dyn"]
    assert decoded == decode_relr(words, word_size)


# --- cross builds --------------------------------------------------------------------------


@pytest.mark.parametrize("target", CROSS_TARGETS)
def test_cross_build_relocations_use_the_architecture_names(tmp_path: Path, target: str) -> None:
    elf_class, relative, absolute, plt, irelative, tls_gd = ARCH[target]
    lib = cross_build(tmp_path, target)
    assert oracle.elf_header(lib)["Class"] == elf_class
    counts = oracle.relocation_type_counts(lib)
    assert counts[relative] >= 24 + 3  # cross_names entries, cross_handlers slots
    assert counts[plt] >= 1
    assert counts[irelative] >= 1
    per_symbol = oracle.relocations_per_symbol(lib)
    assert per_symbol["cross_names"] == 24
    assert per_symbol["cross_handlers"] == 3
    assert per_symbol["cross_ifunc_ptr"] == 1

    rela = elf_class == "ELF64"  # every 32-bit target here uses REL (implicit addends)
    by_offset = {r.offset: r for r in oracle.relocations(lib)}
    # readelf prints an ifunc symbol's value as "name()" instead of hex: still parsed.
    for pointer, target_symbol in (
        ("cross_exported_ptr", "cross_exported"),
        ("cross_external_ptr", "external_value"),
        ("cross_exported_ifunc_ptr", "cross_exported_ifunc"),
    ):
        reloc = by_offset[symbol(lib, pointer)["address"]]
        assert (reloc.type, reloc.symbol) == (absolute, target_symbol)
        assert reloc.addend == (0 if rela else None)
    assert any(
        r.type == tls_gd and r.symbol == "cross_tls_counter" for r in oracle.relocations(lib)
    )
    assert_tables_match_dynamic_section(lib)


@pytest.mark.parametrize("target", CROSS_TARGETS)
def test_cross_relr_decoding(tmp_path: Path, target: str) -> None:
    relative = ARCH[target][1]
    plain = cross_build(tmp_path / "plain", target)
    packed = cross_build(tmp_path / "relr", target, (RELR_FLAG.get(target, LLD_RELR_FLAG),))
    tables = oracle.relocation_table_counts(packed)
    if ".relr.dyn" not in tables:
        pytest.skip(f"the {target} linker does not emit RELR")
    counts = oracle.relocation_type_counts(packed)
    assert counts[relative] == oracle.relocation_type_counts(plain)[relative]
    assert tables[".relr.dyn"] == oracle.relr_announced_offsets(packed)[".relr.dyn"]
    words, word_size = relr_words(packed, ".relr.dyn")
    decoded = [r.offset for r in oracle.relocations(packed) if r.table == ".relr.dyn"]
    assert decoded == decode_relr(words, word_size)
    assert oracle.relocations_per_symbol(packed)["cross_names"] == 24
    assert_tables_match_dynamic_section(packed)


def test_powerpc64_elfv1_function_symbols_own_only_their_descriptor(tmp_path: Path) -> None:
    lib = cross_build(tmp_path, "powerpc64-linux-gnu")
    entry = symbol(lib, "cross_entry")
    assert entry["section"] == ".opd" and entry["size"] > 24  # st_size is the code's size
    # Descriptor: entry point and TOC base are relocated; the environment word is not.
    assert oracle.relocations_per_symbol(lib)["cross_entry"] == 2


def test_llvm_readelf_agrees_with_gnu_readelf_where_both_decode(pointer_tables: Path,
                                                                pointer_tables_relr: Path) -> None:
    """The second oracle (for APS2 and hidden tables) reads plain and RELR tables as the
    first one does, entry for entry."""
    import shutil

    if shutil.which(oracle.LLVM_READELF) is None:
        pytest.skip("llvm-readelf (Debian llvm) is not installed")
    for path in (pointer_tables, pointer_tables_relr):
        gnu = sorted((r.offset, r.type) for r in oracle.relocations(path))
        llvm = sorted((r.offset, r.type) for r in oracle.llvm_relocations(path))
        assert gnu == llvm and len(gnu) > 40
        through_dynamic = sorted((r.offset, r.type)
                                 for r in oracle.llvm_relocations(path, dynamic=True))
        assert through_dynamic == gnu


@pytest.mark.parametrize("target", ["mips64el-linux-gnuabi64", "mipsel-linux-gnu"])
def test_mips_primary_got_listing_matches_the_dynamic_counts(tmp_path: Path, target: str) -> None:
    """readelf -A's GOT entries are DT_MIPS_LOCAL_GOTNO (reserved included) local ones and
    DT_MIPS_SYMTABNO - DT_MIPS_GOTSYM global ones, laid out from DT_PLTGOT; the three-type
    MIPS64 records parse as one relocation each."""
    path = cross_build(tmp_path, target)
    got = oracle.mips_primary_got(path)
    tags = oracle.dynamic(path)
    local = int(tags["MIPS_LOCAL_GOTNO"][0])
    first_global = int(tags["MIPS_GOTSYM"][0], 16)
    symbols = int(tags["MIPS_SYMTABNO"][0])
    assert len(got["reserved"]) + len(got["local"]) == local
    assert len(got["global"]) == symbols - first_global
    entries = got["reserved"] + got["local"] + got["global"]
    word = 8 if "64" in target else 4
    start = int(tags["PLTGOT"][0], 16)
    assert entries == list(range(start, start + len(entries) * word, word))
    assert len(oracle.relocations(path)) == dynamic_size(path, "RELSZ") // dynamic_size(path, "RELENT")
