"""The engine's numbers agree with binutils on real libraries.

Every expectation comes from readelf/nm (tests/oracle.py), run on libraries the tests build
from tests/fixtures or on system libraries; none from relrocheck's own earlier output.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import oracle
import pytest
from libbuild import (
    CROSS_TARGETS,
    BuildError,
    build_library,
    fixture,
    have_cross,
    sstrip_copy,
    strip_copy,
)

from relrocheck.errors import ElfError
from relrocheck.measure import measure
from relrocheck.model import Library

SYSTEM_LIBS = [
    Path("/usr/lib/x86_64-linux-gnu/libc.so.6"),
    Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6"),
    Path("/usr/lib/x86_64-linux-gnu/libz.so.1"),
]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("measure")


def _host_fixtures(build_dir: Path) -> dict[str, Path]:
    libs = {
        "pointer_tables": build_library(build_dir, "pointer_tables", fixture("pointer_tables.c")),
        "cxx_vtables": build_library(build_dir, "cxx_vtables", fixture("cxx_vtables.cpp"),
                                     lang="c++"),
        "tls": build_library(build_dir, "tls", fixture("tls.c")),
        "bind_now": build_library(build_dir / "now", "pointer_tables", fixture("pointer_tables.c"),
                                  flags=["-Wl,-z,now"]),
    }
    try:
        libs["relr"] = build_library(build_dir / "relr", "pointer_tables",
                                     fixture("pointer_tables.c"),
                                     flags=["-Wl,-z,pack-relative-relocs"])
    except BuildError:
        pass  # older linkers: the system libc still covers RELR
    libs["stripped"] = strip_copy(libs["cxx_vtables"])
    return libs


@pytest.fixture(scope="module")
def host_libs(build_dir: Path) -> dict[str, Path]:
    return _host_fixtures(build_dir)


def _all_libraries(host_libs: dict[str, Path]) -> list[Path]:
    return list(host_libs.values()) + [p for p in SYSTEM_LIBS if p.exists()]


def _check_against_binutils(path: Path, lib: Library) -> None:
    # Relocations: total, per type name, per table.
    assert lib.relocations.total == oracle.relocation_total(path)
    assert Counter(lib.relocations.by_type) == oracle.relocation_type_counts(path)
    assert Counter(lib.relocations.by_table) == oracle.relocation_table_counts(path)
    # Pages holding a relocation target.
    assert lib.pages.relocated == oracle.pages_with_relocations(path, lib.page_size)
    # Writable sections: sizes as readelf -SW prints them.
    readelf_sections = oracle.sections(path)
    for section in lib.sections:
        assert section.size == readelf_sections[section.name]["size"], section.name
        assert section.address == readelf_sections[section.name]["address"], section.name
    writable = {n for n, s in readelf_sections.items() if "W" in s["flags"] and "A" in s["flags"]
                and s["size"]}
    assert writable <= {s.name for s in lib.sections}
    # The page .data shares with .bss, zero-filled by the loader: from the RW PT_LOAD.
    expected_zero_filled = set()
    for seg in oracle.segments(path):
        end = seg["address"] + seg["file_size"]
        if (seg["type"] == "LOAD" and "W" in seg["flags"] and seg["memory_size"] > seg["file_size"]
                and seg["file_size"] and end % lib.page_size):
            expected_zero_filled.add(end - end % lib.page_size)
    assert set(lib.pages.zero_filled_addresses) == expected_zero_filled
    assert lib.pages.data_bss_shared == len(expected_zero_filled)
    # Relocations per section, and per section attributed + unattributed = total.
    by_section = oracle.relocations_per_section(path)
    assert Counter(lib.relocations.by_section) == +by_section
    per_section: Counter[str] = Counter()
    for symbol in lib.symbols:
        per_section[symbol.section] += symbol.relocations
    for section in lib.sections:
        assert per_section[section.name] == by_section.get(section.name, 0), section.name


@pytest.mark.parametrize("name", ["pointer_tables", "cxx_vtables", "tls", "bind_now", "relr",
                                  "stripped"])
def test_fixture_numbers_match_readelf(host_libs: dict[str, Path], name: str) -> None:
    if name not in host_libs:
        pytest.skip("the host linker cannot pack relative relocations")
    path = host_libs[name]
    _check_against_binutils(path, measure(str(path)))


@pytest.mark.parametrize("path", SYSTEM_LIBS, ids=lambda p: p.name)
def test_system_library_numbers_match_readelf(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not installed")
    _check_against_binutils(path, measure(str(path)))


def _per_symbol(lib: Library) -> dict[str, int]:
    """Relocations per symbol name as nm-based counting sees them: aliases get the count of
    the bytes they name, symbols of the same name are summed."""
    counts: dict[str, int] = {}
    for s in lib.symbols:
        if s.unattributed:
            continue
        counts[s.name] = counts.get(s.name, 0) + s.relocations
    return counts


@pytest.mark.parametrize("name", ["pointer_tables", "cxx_vtables", "tls", "relr"])
def test_relocations_per_symbol_match_nm_and_readelf(host_libs: dict[str, Path], name: str) -> None:
    if name not in host_libs:
        pytest.skip("the host linker cannot pack relative relocations")
    path = host_libs[name]
    lib = measure(str(path))
    expected = {n: c for n, c in oracle.relocations_per_symbol(path).items()}
    ours = _per_symbol(lib)
    aliases = {a for s in lib.symbols for a in s.aliases}
    for symbol_name, count in expected.items():
        if symbol_name in aliases:
            continue
        if count or symbol_name in ours:
            assert ours.get(symbol_name) == count, symbol_name


def test_stripped_library_attributes_to_dynamic_symbols(host_libs: dict[str, Path]) -> None:
    path = host_libs["stripped"]
    lib = measure(str(path))
    assert lib.symbol_table == ".dynsym"
    expected = oracle.relocations_per_symbol(path, dynamic=True)
    ours = _per_symbol(lib)
    vtables = [n for n in expected if n.startswith("_ZTV")]
    assert vtables, "the C++ fixture exports vtables"
    for symbol_name in vtables:
        assert ours[symbol_name] == expected[symbol_name] > 0


def test_pointer_table_costs_are_attributed(host_libs: dict[str, Path]) -> None:
    lib = measure(str(host_libs["pointer_tables"]))
    names = lib.symbol("names")
    assert names is not None and names.section == ".data"
    assert names.relocations == 40 == names.targets.get("rodata")
    assert names.by_class == {"relative": 40}
    const_names = lib.symbol("const_names")
    assert const_names is not None and const_names.section == ".data.rel.ro"
    assert const_names.relocations == 12
    file_ops = lib.symbol("file_ops")
    assert file_ops is not None and file_ops.binding == "LOCAL"
    assert file_ops.targets == {"rodata": 2, "code": 2}
    # One pointer in a 4 MiB struct: it spans over a thousand pages, one is relocated.
    big = lib.symbol("big_table")
    assert big is not None and big.relocations == 1 and big.pages == 1
    assert big.span_pages >= 1024
    # A pointer to an exported (interposable) object needs a symbol lookup.
    exported_ptr = lib.symbol("exported_counter_ptr")
    assert exported_ptr is not None and exported_ptr.by_class == {"symbolic": 1}
    assert exported_ptr.targets == {"own_export": 1}


def test_relro_status_follows_bind_now(host_libs: dict[str, Path]) -> None:
    lazy = measure(str(host_libs["pointer_tables"]))
    now = measure(str(host_libs["bind_now"]))
    assert oracle.relro_range(host_libs["pointer_tables"]) == lazy.relro_range
    assert "BIND_NOW" not in oracle.dynamic_flags(host_libs["pointer_tables"])
    assert lazy.relro == "partial" and not lazy.bind_now
    assert "BIND_NOW" in oracle.dynamic_flags(host_libs["bind_now"]) or \
        "NOW" in oracle.dynamic_flags(host_libs["bind_now"])
    assert now.relro == "full" and now.bind_now


def test_static_initializers_count_init_array_and_dt_init(host_libs: dict[str, Path]) -> None:
    path = host_libs["cxx_vtables"]
    lib = measure(str(path))
    sections = oracle.sections(path)
    entries = sections[".init_array"]["size"] // 8 if ".init_array" in sections else 0
    has_init = "INIT" in oracle.dynamic(path)
    assert lib.init_array_entries == entries
    assert lib.has_dt_init == has_init
    assert lib.static_initializers == entries + int(has_init)


def test_tls_pointer_in_tdata_is_attributed_to_its_symbol(host_libs: dict[str, Path]) -> None:
    lib = measure(str(host_libs["tls"]))
    tls_name = lib.symbol("tls_name")
    assert tls_name is not None and tls_name.section == ".tdata"
    assert tls_name.relocations == oracle.relocations_per_symbol(host_libs["tls"])["tls_name"] == 1
    buffer = lib.symbol("tls_buffer")
    assert buffer is not None and buffer.section == ".tbss" and buffer.relocations == 0
    assert any(s.kind == "tbss" for s in lib.sections)


def test_textrel_is_detected_with_its_section(tmp_path: Path) -> None:
    source = "int counter;\nint *get(void) { return &counter; }\n"
    obj = tmp_path / "textrel.o"
    import subprocess

    # Non-PIC code in a shared object: absolute addresses in .text need relocations there.
    subprocess.run(["cc", "-O2", "-fno-pic", "-mcmodel=large", "-c", "-x", "c", "-", "-o",
                    str(obj)], input=source, text=True, check=True)
    lib_path = tmp_path / "libtextrel.so"
    proc = subprocess.run(["cc", "-shared", "-Wl,-z,notext", "-o", str(lib_path), str(obj)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"the host linker refuses text relocations: {proc.stderr.strip()}")
    lib = measure(str(lib_path))
    assert "TEXTREL" in oracle.dynamic(lib_path) or "TEXTREL" in oracle.dynamic_flags(lib_path)
    assert lib.textrel
    assert ".text" in lib.textrel_sections
    assert lib.relocations.by_section[".text"] == oracle.relocations_per_section(lib_path)[".text"]


@pytest.mark.parametrize("page_size", [4096, 16384, 65536])
def test_page_size_changes_the_page_count(host_libs: dict[str, Path], page_size: int) -> None:
    path = host_libs["pointer_tables"]
    lib = measure(str(path), page_size=page_size)
    assert lib.pages.relocated == oracle.pages_with_relocations(path, page_size)
    assert lib.pages.page_size == page_size


@pytest.mark.parametrize("target", CROSS_TARGETS + ("powerpc-linux-gnu",))
def test_cross_architecture_numbers_match_readelf(tmp_path: Path, target: str) -> None:
    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    path = build_library(tmp_path, "cross", fixture("cross.c"), target=target)
    lib = measure(str(path))
    _check_against_binutils(path, lib)
    header = oracle.elf_header(path)
    assert f"ELF{lib.elf_class}" == header["Class"]
    assert oracle.relative_type(path) in lib.relocations.by_type
    expected = oracle.relocations_per_symbol(path)
    ours = _per_symbol(lib)
    assert expected["cross_names"] == ours["cross_names"] == 24
    for symbol_name in ("cross_handlers", "cross_exported_ptr", "cross_external_ptr"):
        assert ours[symbol_name] == expected[symbol_name] == (3 if symbol_name == "cross_handlers"
                                                             else 1)
    assert lib.relocations.by_class.get("symbolic", 0) >= 2


def _expected_relative_targets(path: Path) -> dict[str, Counter[str]]:
    """Per symbol: what its RELATIVE relocations point to, from readelf -rW addends, readelf
    -SW sections and nm ranges (RELA files only: the addend is the target)."""
    sections = [(info["address"], info["address"] + info["size"], info["flags"])
                for info in oracle.sections(path).values()
                if "A" in info["flags"] and info["size"]
                and not ("T" in info["flags"] and info["type"] == "NOBITS")]
    relro = oracle.relro_range(path)

    def kind(address: int) -> str:
        for start, end, flags in sections:
            if start <= address < end:
                if "X" in flags:
                    return "code"
                if "W" not in flags:
                    return "rodata"
                if relro and relro[0] <= start and end <= relro[1]:
                    return "relro"
                return "data"
        return "unknown"

    relative = oracle.relative_type(path)
    targets = [(r.offset, kind(r.addend)) for r in oracle.relocations(path)
               if r.type == relative and r.addend is not None]
    expected: dict[str, Counter[str]] = {}
    for sym in oracle.symbols(path, dynamic=not oracle.symbols(path)):
        if sym["size"] and sym["type"] != "TLS":
            start, end = sym["address"], sym["address"] + sym["size"]
            found = Counter(k for offset, k in targets if start <= offset < end)
            if found:
                expected[sym["name"]] = found
    return expected


@pytest.mark.parametrize("name", ["pointer_tables", "libstdc++.so.6", "libpython3.11.so.1.0"])
def test_relative_targets_match_readelf_addends(host_libs: dict[str, Path], name: str) -> None:
    path = host_libs.get(name) or Path("/usr/lib/x86_64-linux-gnu") / name
    if not path.exists():
        pytest.skip(f"{path} is not installed")
    lib = measure(str(path))
    expected = _expected_relative_targets(path)
    checked = 0
    for symbol in lib.symbols:
        if symbol.unattributed or set(symbol.by_class) != {"relative"}:
            continue
        if symbol.name in expected:
            assert Counter(symbol.targets) == expected[symbol.name], symbol.name
            checked += 1
    assert checked >= 3


def test_pie_executables_are_told_from_libraries(tmp_path: Path) -> None:
    import subprocess

    exe = tmp_path / "prog"
    subprocess.run(["cc", "-O2", "-fPIE", "-pie", "-x", "c", "-", "-o", str(exe)],
                   input="const char *names[] = {\"a\", \"b\"};\n"
                         "int main(int argc, char **argv) { return names[argc][0]; }\n",
                   text=True, check=True)
    program = measure(str(exe))
    assert program.file_type == "DYN" and program.pie
    assert "PIE" in oracle.dynamic_flags(exe)
    libc = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
    if libc.exists():
        # libc.so.6 has an interpreter (it runs as a program) but is a library: a SONAME.
        assert any(s["type"] == "INTERP" for s in oracle.segments(libc))
        assert not measure(str(libc)).pie


def test_an_unsupported_architecture_is_one_clear_error(
        host_libs: dict[str, Path], tmp_path: Path) -> None:
    import struct

    path = tmp_path / "alien.so"
    data = bytearray(host_libs["pointer_tables"].read_bytes())
    struct.pack_into("<H", data, 18, 0x1234)  # e_machine: no such architecture
    path.write_bytes(bytes(data))
    assert "1234" in oracle.elf_header(path)["Machine"]
    with pytest.raises(ElfError, match=r"unsupported machine \(e_machine 4660\); supported: "):
        measure(str(path))


@pytest.mark.parametrize("target", ["mips64el-linux-gnuabi64", "mipsel-linux-gnu",
                                    "mips64-linux-gnuabi64"])
def test_mips_pages_are_the_records_plus_every_got_entry(tmp_path: Path, target: str) -> None:
    """MIPS64 records pack three types (one write each); the loader writes the primary GOT
    (reserved + DT_MIPS_LOCAL_GOTNO local + global from DT_MIPS_GOTSYM) without records."""
    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    path = build_library(tmp_path, "cross", fixture("cross.c"), target=target)
    records = oracle.relocations(path)
    got = oracle.mips_primary_got(path)
    entries = got["reserved"] + got["local"] + got["global"]
    assert got["local"] and got["global"]
    lib = measure(str(path))
    ours = Counter(lib.relocations.by_type)
    assert ours.pop("MIPS GOT local entry (no record)") == len(got["reserved"] + got["local"])
    assert ours.pop("MIPS GOT global entry (no record)") == len(got["global"])
    assert ours == Counter(r.type for r in records)
    assert lib.relocations.total == len(records) + len(entries)
    assert lib.relocations.encodings[".got"] == "MIPS GOT (no records)"
    writes = {r.offset for r in records if r.type != "R_MIPS_NONE"} | set(entries)
    assert set(lib.pages.relocated_addresses) == {a // 4096 * 4096 for a in writes}
    expected = oracle.relocations_per_symbol(path)
    assert _per_symbol(lib)["cross_names"] == expected["cross_names"] == 24
    # REL32 against symbol 0 is relative; against a symbol, symbolic.
    relative_records = sum(r.type == "R_MIPS_REL32" and r.symbol is None for r in records)
    assert lib.relocations.by_class["relative"] == relative_records + len(
        got["reserved"] + got["local"])


def test_measured_symbols_carry_every_field_of_the_model(host_libs: dict[str, Path]) -> None:
    from relrocheck.model import Symbol
    from relrocheck.record import fields, replace

    lib = measure(str(host_libs["pointer_tables"]))
    names = [f.name for f in fields(Symbol)]
    for symbol in lib.symbols:
        assert list(vars(symbol)) == names  # in order: the JSON template relies on it
        assert replace(symbol) == symbol


# --- every toolchain's tables: Android packing, hidden RELR, hidden headers -----------------

_PACKED_TARGETS = ("aarch64-linux-gnu", "armv7a-linux-gnueabihf")
_PACKINGS = {
    "android": ("-Wl,--pack-dyn-relocs=android",),
    "relr": ("-Wl,--pack-dyn-relocs=relr",),
    "android+relr": ("-Wl,--pack-dyn-relocs=android+relr",),
    "android+relr-tags": ("-Wl,--pack-dyn-relocs=android+relr", "-Wl,--use-android-relr-tags"),
    "relr-tags": ("-Wl,--pack-dyn-relocs=relr", "-Wl,--use-android-relr-tags"),
}


def _require_llvm_readelf() -> None:
    import shutil

    if shutil.which(oracle.LLVM_READELF) is None:
        pytest.skip("llvm-readelf (Debian llvm) is not installed")


def _check_against_llvm(lib: Library, truth: list[oracle.LlvmRelocation]) -> None:
    """Totals, types and relocated pages against llvm-readelf's decoded relocations."""
    writes = [r for r in truth if not r.type.endswith("_NONE")]
    assert lib.relocations.total == len(truth)
    assert Counter(lib.relocations.by_type) == Counter(r.type for r in truth)
    pages = {r.offset // lib.page_size * lib.page_size for r in writes}
    assert set(lib.pages.relocated_addresses) == pages
    assert lib.pages.relocated == len(pages)


@pytest.mark.parametrize("packing", sorted(_PACKINGS))
@pytest.mark.parametrize("target", _PACKED_TARGETS)
def test_android_packed_tables_match_llvm_readelf(tmp_path: Path, target: str,
                                                  packing: str) -> None:
    _require_llvm_readelf()
    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    path = build_library(tmp_path, "packed", fixture("pointer_tables.c"),
                         flags=_PACKINGS[packing], target=target)
    plain = build_library(tmp_path / "plain", "packed", fixture("pointer_tables.c"),
                          target=target)
    truth = oracle.llvm_relocations(path)
    # The oracle's own check: packing changes the encoding, never the relocations.
    assert len(truth) == oracle.relocation_total(plain) == len(oracle.llvm_relocations(plain))
    lib = measure(str(path))
    _check_against_llvm(lib, truth)
    assert Counter(lib.relocations.by_table) == Counter(r.table for r in truth)
    rel = "RELA" if target.startswith("aarch64") else "REL"
    encodings = lib.relocations.encodings
    if packing.startswith("android"):
        assert encodings[f".{rel.lower()}.dyn"] == f"APS2 {rel}"
    if "relr" in packing:
        assert encodings[".relr.dyn"] == ("RELR (DT_ANDROID_RELR)" if packing.endswith("tags")
                                          else "RELR")
    # LIEF, a third decoder, reads the same relocations.
    lief = oracle.lief_relocations(path)
    if lief is not None:
        assert sorted(lief) == sorted((r.offset, r.type) for r in truth)
    # Per symbol, the packed build attributes exactly what the unpacked one does.
    assert _per_symbol(lib) == _per_symbol(measure(str(plain)))
    # explain reads the packed tables too: the words of `names` are llvm-readelf's.
    from relrocheck.explain import relocated_words

    names = next(s for s in oracle.symbols(path) if s["name"] == "names")
    inside = sorted(r.offset for r in truth
                    if names["address"] <= r.offset < names["address"] + names["size"])
    assert [w.address for w in relocated_words(str(path), lib, lib.symbol("names"))] == inside
    assert len(inside) == 40


def _section_header(path: Path, name: str) -> tuple[int, int, str]:
    """(file offset of the section header of `name`, of its sh_type, byte order) from the ELF
    header fields readelf prints and the section's index in readelf -SW."""
    header = oracle.elf_header(path)
    shoff = int(header["Start of section headers"].split()[0])
    entsize = int(header["Size of section headers"].split()[0])
    index = next(int(line.split("]")[0].split("[")[1]) for line in
                 oracle._run(oracle.READELF, ("-SW",), path).splitlines()
                 if f"] {name} " in line)
    order = "<" if "little endian" in header["Data"] else ">"
    return shoff + index * entsize, shoff + index * entsize + 4, order


def _retype_section(path: Path, name: str, sh_type: int) -> None:
    import struct

    _, type_at, order = _section_header(path, name)
    data = bytearray(path.read_bytes())
    struct.pack_into(order + "I", data, type_at, sh_type)
    path.write_bytes(bytes(data))


def _retag_dynamic(path: Path, retag: dict[int, int]) -> None:
    """Rewrite d_tag values of the dynamic section in place (file offset from readelf -lW)."""
    import struct

    header = oracle.elf_header(path)
    wide = header["Class"] == "ELF64"
    order = "<" if "little endian" in header["Data"] else ">"
    dyn = next(s for s in oracle.segments(path) if s["type"] == "DYNAMIC")
    fmt = struct.Struct(order + ("qQ" if wide else "iI"))
    data = bytearray(path.read_bytes())
    for at in range(dyn["offset"], dyn["offset"] + dyn["file_size"], fmt.size):
        tag, value = fmt.unpack_from(data, at)
        if tag in retag:
            fmt.pack_into(data, at, retag[tag], value)
    path.write_bytes(bytes(data))


def test_relrhack_hidden_relr_tags_are_counted(tmp_path: Path) -> None:
    """Firefox's relrhack ORs 0x8000000 into DT_RELR* and retypes SHT_RELR as PROGBITS; the
    binary applies the table itself, so its pages are written all the same."""
    _require_llvm_readelf()
    target = "aarch64-linux-gnu"
    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    path = build_library(tmp_path, "hack", fixture("pointer_tables.c"),
                         flags=("-Wl,--pack-dyn-relocs=relr",), target=target)
    truth = oracle.llvm_relocations(path)  # before the tags are hidden
    assert any(r.table == ".relr.dyn" for r in truth)
    _retag_dynamic(path, {35: 35 | 0x8000000, 36: 36 | 0x8000000, 37: 37 | 0x8000000})
    _retype_section(path, ".relr.dyn", 1)
    assert oracle.sections(path)[".relr.dyn"]["type"] == "PROGBITS"
    assert "RELR" not in oracle.dynamic(path)
    lib = measure(str(path))
    _check_against_llvm(lib, truth)
    assert lib.relocations.encodings[".relr.dyn"] == "RELR (relrhack)"
    (note,) = lib.relocations.notes
    assert note.startswith("DT_RELR (hidden by relrhack): ")
    assert note.endswith(" bytes of RELR (relrhack) at 0x%x; the section headers give .relr.dyn "
                         "type PROGBITS; read from the dynamic tags, as the loader does"
                         % oracle.sections(path)[".relr.dyn"]["address"])


def test_a_hidden_relocation_section_header_is_read_through_the_dynamic_tags(
        host_libs: dict[str, Path], tmp_path: Path) -> None:
    """The loader follows DT_RELA/DT_RELASZ, whatever the section header says."""
    path = tmp_path / "hidden.so"
    path.write_bytes(host_libs["pointer_tables"].read_bytes())
    truth = oracle.relocations(path)
    assert sum(r.table == ".rela.dyn" for r in truth) > 40
    _retype_section(path, ".rela.dyn", 1)
    assert oracle.sections(path)[".rela.dyn"]["type"] == "PROGBITS"
    lib = measure(str(path))
    assert lib.relocations.total == len(truth)
    assert Counter(lib.relocations.by_type) == Counter(r.type for r in truth)
    assert lib.pages.relocated == oracle.pages_with_relocations(host_libs["pointer_tables"])
    assert lib.relocations.encodings[".rela.dyn"] == "RELA"
    # The report says why its count differs from what the section headers list.
    rela = oracle.sections(host_libs["pointer_tables"])[".rela.dyn"]
    assert lib.relocations.notes == (
        f"DT_RELA: {rela['size']} bytes of RELA at 0x{rela['address']:x}; the section headers "
        "give .rela.dyn type PROGBITS; read from the dynamic tags, as the loader does",)
    assert measure(str(host_libs["pointer_tables"])).relocations.notes == ()


def test_a_relocation_section_header_cut_short_is_noted_and_read_whole(
        host_libs: dict[str, Path], tmp_path: Path) -> None:
    """A header claiming fewer bytes than DT_RELASZ: the loader applies them all."""
    import struct
    import subprocess
    import sys

    path = tmp_path / "short.so"
    path.write_bytes(host_libs["pointer_tables"].read_bytes())
    truth = oracle.relocations(path)
    header_at, _, order = _section_header(path, ".rela.dyn")
    full = oracle.sections(path)[".rela.dyn"]["size"]
    data = bytearray(path.read_bytes())
    struct.pack_into(order + "Q", data, header_at + 32, 24)  # sh_size of an Elf64_Shdr
    path.write_bytes(bytes(data))
    assert oracle.sections(path)[".rela.dyn"]["size"] == 24
    lib = measure(str(path))
    assert lib.relocations.total == len(truth)
    (note,) = lib.relocations.notes
    assert note.startswith(f"DT_RELA: {full} bytes of RELA at ")
    assert "the section headers (.rela.dyn) cover 24 of its bytes" in note
    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", str(path)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert f"    note: {note}\n" in run.stdout


def test_an_undecodable_relocation_tag_is_an_error_naming_it(
        host_libs: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "crel.so"
    path.write_bytes(host_libs["pointer_tables"].read_bytes())
    _retag_dynamic(path, {7: 0x40000026})  # DT_RELA -> DT_CREL
    assert "RELA" not in oracle.dynamic(path)
    with pytest.raises(ElfError, match=r"DT_CREL .*cannot decode"):
        measure(str(path))
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", str(path)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith(f"relrocheck: error: {path}: has a DT_CREL relocation table")
    assert run.stderr.count("\n") == 1


def test_none_relocations_are_counted_but_write_no_page(
        host_libs: dict[str, Path], tmp_path: Path) -> None:
    """A static-pie's R_*_NONE at offset 0 must not make the ELF header's page dirty."""
    import struct

    path = tmp_path / "none.so"
    path.write_bytes(host_libs["pointer_tables"].read_bytes())
    rela = oracle.sections(path)[".rela.dyn"]
    dyn_offset = next(int(line.split()[4], 16) for line in
                      oracle._run(oracle.READELF, ("-SW",), path).splitlines()
                      if "] .rela.dyn " in line)
    assert rela["size"] >= 24
    data = bytearray(path.read_bytes())
    struct.pack_into("<QQq", data, dyn_offset, 0, 0, 0)  # first entry: R_X86_64_NONE at 0
    path.write_bytes(bytes(data))
    truth = oracle.relocations(path)
    assert truth[0].type == "R_X86_64_NONE" and truth[0].offset == 0
    writes = [r for r in truth if r.type != "R_X86_64_NONE"]
    lib = measure(str(path))
    assert lib.relocations.total == len(truth)
    assert lib.relocations.no_ops == len(truth) - len(writes)
    assert lib.relocations.by_type["R_X86_64_NONE"] == len(truth) - len(writes)
    assert sum(lib.relocations.by_class.values()) == len(writes)
    assert 0 not in lib.pages.relocated_addresses
    assert lib.pages.relocated == len({r.offset // 4096 for r in writes})


_OVERLAP_SOURCE = r"""
__attribute__((visibility("hidden"))) int target[4];
__asm__(
    ".section .data.rel.ro,\"aw\"\n"
    ".balign 8\n"
    ".globl first\n.type first,@object\n.size first, 64\n"
    ".globl second\n.type second,@object\n.size second, 40\n"
    "first:\n"
    ".quad target, target, target, target, target, target, target\n"
    "second:\n"  /* starts in first's last word, as glibc's sys_sigabbrev in _sys_errlist */
    ".quad target, target, target, target, target\n"
    ".text\n");
int use(void) { return target[0]; }
"""


def test_a_symbol_starting_inside_another_is_not_its_alias(tmp_path: Path) -> None:
    from relrocheck.explain import relocated_words

    path = build_library(tmp_path, "overlap", _OVERLAP_SOURCE)
    nm = {s["name"]: s for s in oracle.symbols(path)}
    first, second = nm["first"], nm["second"]
    assert first["address"] < second["address"] < first["address"] + first["size"] \
        < second["address"] + second["size"]
    offsets = oracle.relocation_offsets(path)
    union = sum(first["address"] <= o < second["address"] + second["size"] for o in offsets)
    expected = oracle.relocations_per_symbol(path)
    lib = measure(str(path))
    ours = _per_symbol(lib)
    # The earlier symbol keeps the shared word; the later one owns the rest, nothing is
    # folded or left unattributed.
    assert ours["first"] == expected["first"] == 8
    assert ours["second"] == union - expected["first"] == 4
    assert "second" not in lib.symbol("first").aliases
    assert not any(s.unattributed and s.section == ".data.rel.ro" and s.relocations
                   for s in lib.symbols)
    words = relocated_words(str(path), lib, lib.symbol("second"))
    assert len(words) == 4
    assert all(second["address"] + 8 <= w.address < second["address"] + 40 for w in words)


@pytest.mark.parametrize("name", ["pointer_tables", "relr", "sysv_hash"])
def test_a_library_without_section_headers_is_measured_through_its_dynamic_segment(
        host_libs: dict[str, Path], tmp_path: Path, name: str) -> None:
    if name == "relr":
        try:
            original = build_library(tmp_path / "relr", "pointer_tables",
                                     fixture("pointer_tables.c"),
                                     flags=["-Wl,-z,pack-relative-relocs"])
        except BuildError:
            pytest.skip("the host linker has no -z pack-relative-relocs")
    elif name == "sysv_hash":  # DT_HASH, not DT_GNU_HASH, gives the number of symbols
        original = build_library(tmp_path / "sysv", "pointer_tables",
                                 fixture("pointer_tables.c"), flags=["-Wl,--hash-style=sysv"])
        assert "HASH" in oracle.dynamic(original) and "GNU_HASH" not in oracle.dynamic(original)
    else:
        original = host_libs[name]
    path = sstrip_copy(original, tmp_path / "sstripped.so")
    assert oracle.elf_header(path)["Number of section headers"].split()[0] == "0"
    truth = oracle.relocations(original)
    lib = measure(str(path))
    assert lib.relocations.total == len(truth)
    assert Counter(lib.relocations.by_type) == Counter(r.type for r in truth)
    assert lib.pages.relocated == oracle.pages_with_relocations(original)
    assert lib.soname == oracle.dynamic(original)["SONAME"][0].strip("[]")
    notes = oracle._run(oracle.READELF, ("-n",), original)
    build_id = next((line.split(":", 1)[1].strip() for line in notes.splitlines()
                     if "Build ID:" in line), None)
    assert lib.build_id == build_id
    tags = oracle.dynamic(original)
    init = sum(int(tags[t][0].split()[0]) for t in ("INIT_ARRAYSZ", "PREINIT_ARRAYSZ")
               if t in tags) // 8
    assert lib.static_initializers == init + ("INIT" in tags)
    # Every relocation lands in a stand-in cut from the program headers, none outside.
    assert sum(s.relocations for s in lib.sections) == len(truth)
    assert all(s.name.startswith("[PT_LOAD") for s in lib.sections)
    # The dynamic symbols (found through DT_SYMTAB, counted by the hash table) still name
    # the exported objects, with the relocations nm -D and readelf give the original.
    assert lib.symbol_table == "[DT_SYMTAB]"
    exported = oracle.relocations_per_symbol(original, dynamic=True)
    named = {s.name: s for s in lib.symbols if not s.unattributed}
    assert {"names", "const_names", "exported_counter_ptr"} <= named.keys()
    for symbol in named.values():
        assert symbol.relocations == exported[symbol.name], symbol.name
        assert symbol.section.startswith("[PT_LOAD")
    writable_exports = {sym["name"] for sym in oracle.symbols(original, dynamic=True)
                        if sym["size"] and oracle.sections(original)[sym["section"]]["flags"]
                        .startswith("W")}
    assert writable_exports <= named.keys() | {a for s in named.values() for a in s.aliases}
    # GOT slots by the relocation types that fill them, as readelf lists them.
    defined = {sym["name"] for sym in oracle.symbols(original, dynamic=True)}
    slots = {(r.symbol, "own_export" if r.symbol in defined else "external") for r in truth
             if r.symbol and r.type.endswith(("_GLOB_DAT", "_JUMP_SLOT"))}
    assert slots and {(name, kind) for name, kind, _ in lib.got_slots} == slots
    assert all(section.startswith("[PT_LOAD") for _, _, section in lib.got_slots)


def test_a_library_without_section_headers_takes_every_symbol_from_its_debug_file(
        tmp_path: Path) -> None:
    """A debug file's .symtab names the local objects too; its section numbers are of
    sections the stripped file no longer describes, so symbols are placed by address."""
    import shutil
    import subprocess

    objcopy = shutil.which("llvm-objcopy")
    if objcopy is None:
        pytest.skip("llvm-objcopy (Debian llvm) is not installed")
    original = build_library(tmp_path, "pointer_tables", fixture("pointer_tables.c"),
                             flags=["-g"])
    debug, path = tmp_path / "pointer_tables.debug", tmp_path / "sstripped.so"
    subprocess.run([objcopy, "--only-keep-debug", str(original), str(debug)], check=True)
    sstrip_copy(original, path)
    lib = measure(str(path), symbols_from=str(debug))
    truth = oracle.relocations_per_symbol(original)
    named = {s.name: s for s in lib.symbols if not s.unattributed}
    assert {"names", "const_names", "file_ops", "big_table"} <= named.keys()
    assert "file_ops" not in oracle.relocations_per_symbol(original, dynamic=True)  # local
    for symbol in named.values():
        assert symbol.relocations == truth[symbol.name], symbol.name


def test_several_page_sizes_in_one_run_match_readelf(host_libs: dict[str, Path]) -> None:
    """--page-size 4096,16384,65536: pages at each size in text and JSON (schema-valid),
    each the distinct pages of readelf's offsets; symbols keep the first size."""
    import json
    import subprocess
    import sys

    import jsonschema

    import relrocheck

    path = host_libs["pointer_tables"]
    offsets = oracle.relocation_offsets(path)
    sizes = (4096, 16384, 65536)
    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", "--format", "json",
                          "--page-size", ",".join(map(str, sizes)), str(path)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    schema = Path(relrocheck.__file__).parent / "schemas" / "report.schema.json"
    jsonschema.validate(document, json.loads(schema.read_text()))
    entry = document["libraries"][0]
    assert entry["page_size"] == entry["pages"]["page_size"] == 4096
    all_pages = [entry["pages"], *entry["pages_by_size"]]
    assert [p["page_size"] for p in all_pages] == list(sizes)
    for pages in all_pages:
        size = pages["page_size"]
        expected = {o // size * size for o in offsets}
        assert pages["relocated"] == len(expected)
        assert set(pages["relocated_addresses"]) == expected
    text = subprocess.run([sys.executable, "-m", "relrocheck", "report", "--page-size",
                           "4096,16384,65536", str(path)],
                          capture_output=True, text=True, check=True).stdout
    for pages in all_pages[1:]:
        assert f"at {pages['page_size']}-byte pages: {pages['relocated']} relocated" in text


def _debian_corpus(count: int = 30) -> list[Path]:
    """Shared libraries of this system, spread over the alphabet (real files, < 30 MB)."""
    folder = Path("/usr/lib/x86_64-linux-gnu")
    if not folder.is_dir():
        return []
    libs = []
    for p in sorted(folder.glob("*.so*")):
        if p.is_symlink() or not p.is_file() or p.stat().st_size > 30_000_000:
            continue
        with p.open("rb") as f:
            if f.read(4) == b"\x7fELF":
                libs.append(p)
    return libs[::max(1, len(libs) // count)]


@pytest.mark.parametrize("path", _debian_corpus(), ids=lambda p: p.name)
def test_debian_corpus_agrees_with_readelf_and_the_dynamic_section(path: Path) -> None:
    """Every relocation readelf lists by section is one the loader finds through the
    dynamic tags (llvm-readelf --dyn-relocations), and relrocheck counts each once."""
    truth = oracle.relocations(path)
    lib = measure(str(path))
    assert lib.relocations.total == len(truth)
    assert Counter(lib.relocations.by_type) == Counter(r.type for r in truth)
    writes = {r.offset // 4096 * 4096 for r in truth if not r.type.endswith("_NONE")}
    assert set(lib.pages.relocated_addresses) == writes
    import shutil

    if shutil.which(oracle.LLVM_READELF) is not None:
        dynamic = oracle.llvm_relocations(path, dynamic=True)
        assert sorted((r.offset, r.type) for r in dynamic) == sorted(
            (r.offset, r.type) for r in truth)
