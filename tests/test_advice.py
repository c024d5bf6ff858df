"""Advice that is true: one test per case where an earlier hint was wrong.

Each expectation is counted with readelf/nm (tests/oracle.py) on libraries built here, and
flag advice is checked by relinking with the flag.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import oracle
import pytest
from libbuild import BuildError, build_library, fixture

from relrocheck.analyze import analyze
from relrocheck.model import Library, Symbol


def _symbol(lib: Library, name: str) -> Symbol:
    found = lib.symbol(name)
    assert found is not None, f"{name} not in {lib.path}: {[s.name for s in lib.symbols]}"
    return found


def _own_defined(path: Path) -> set[str]:
    """Names the library defines and exports (nm -D --defined-only)."""
    return {s["name"] for s in oracle.symbols(path, dynamic=True)}


@pytest.fixture(scope="module")
def advice_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("advice"), "advice", fixture("advice.c"))


# -- BIND_NOW: PLT calls and GOT data references counted apart -----------------------------------


def test_bind_now_got_hint_counts_calls_and_data_references_apart(tmp_path):
    path = build_library(tmp_path, "now", fixture("fix_plan.c"), flags=["-Wl,-z,now"])
    own = _own_defined(path)
    relocations = oracle.relocations(path)
    calls = sum(1 for r in relocations if "JUMP_SLOT" in r.type and r.symbol in own)
    data = sum(1 for r in relocations if "GLOB_DAT" in r.type and r.symbol in own)
    assert calls and data, "the fixture calls and references its own exports"
    lib = analyze(str(path))
    hints = [s.hint.advice for s in lib.symbols
             if s.unattributed and s.section.startswith(".got") and s.hint is not None]
    stated_calls = sum(int(m) for h in hints for m in re.findall(r"PLT: (\d+) of", h))
    stated_data = sum(int(m) for h in hints
                      for m in re.findall(r"GOT data references \(GLOB_DAT\): (\d+) of", h))
    assert (stated_calls, stated_data) == (calls, data), hints
    # The advice for calls is true: -Bsymbolic-functions removes exactly those PLT slots and
    # leaves the GOT data references to own exported data.
    fixed = build_library(tmp_path / "fixed", "now", fixture("fix_plan.c"),
                          flags=["-Wl,-z,now", "-Wl,-Bsymbolic-functions"])
    after = oracle.relocations(fixed)
    assert not [r for r in after if "JUMP_SLOT" in r.type and r.symbol in own]
    own_objects = {s["name"] for s in oracle.symbols(path, dynamic=True) if s["type"] == "OBJECT"}
    assert ([r for r in after if "GLOB_DAT" in r.type and r.symbol in own_objects]
            and len([r for r in relocations if "GLOB_DAT" in r.type and r.symbol in own_objects])
            == len([r for r in after if "GLOB_DAT" in r.type and r.symbol in own_objects]))


# -- typeinfo: -Bsymbolic, not -Bsymbolic-functions; the exception caveat ----------------------


def test_typeinfo_advice_names_the_flag_that_binds_it(tmp_path):
    path = build_library(tmp_path, "vt", fixture("cxx_vtables.cpp"), lang="c++")
    lib = analyze(str(path))
    derived = [s for s in lib.symbols if s.name.startswith("_ZTI") and
               s.targets.get("own_export")]
    assert derived, "a derived class's typeinfo points to its base's exported typeinfo"
    for s in derived:
        assert "-Wl,-Bsymbolic makes them RELATIVE" in s.hint.advice
        assert "-Bsymbolic-functions does not" in s.hint.advice
        assert "catch" in s.hint.advice
    name = derived[0].name

    def symbolic_in(lib_path: Path) -> int:
        start = next(x for x in oracle.symbols(lib_path) if x["name"] == name)
        return sum(1 for r in oracle.relocations(lib_path)
                   if start["address"] <= r.offset < start["address"] + start["size"]
                   and r.symbol is not None and r.symbol in _own_defined(lib_path))

    assert symbolic_in(path) > 0
    functions = build_library(tmp_path / "f", "vt", fixture("cxx_vtables.cpp"), lang="c++",
                              flags=["-Wl,-Bsymbolic-functions"])
    assert symbolic_in(functions) == symbolic_in(path)  # -Bsymbolic-functions: unchanged
    everything = build_library(tmp_path / "s", "vt", fixture("cxx_vtables.cpp"), lang="c++",
                               flags=["-Wl,-Bsymbolic"])
    assert symbolic_in(everything) == 0


# -- no -fvisibility=hidden for a library already built with it ----------------------------------


def test_no_visibility_advice_for_a_library_that_already_hides(tmp_path):
    if shutil.which("clang") is None or shutil.which("ld.lld") is None:
        pytest.skip("needs clang and ld.lld (lld keeps STV_HIDDEN on localized symbols)")
    try:
        path = build_library(tmp_path, "hidden", fixture("advice.c"), compiler="clang",
                             flags=["-fvisibility=hidden", "-fuse-ld=lld"])
    except BuildError as exc:
        pytest.skip(f"clang/lld cannot build here: {exc}")
    hidden = [line for line in oracle._run(oracle.READELF, ("-sW",), path).splitlines()
              if " HIDDEN " in line]
    assert hidden, "the oracle sees the hidden symbols"
    lib = analyze(str(path))
    hook = _symbol(lib, "parse_hook")
    assert hook.hint.kind == "symbolic_to_own_export"
    assert "-fvisibility=hidden" not in hook.hint.advice
    assert "aliases" in hook.hint.advice and "-Bsymbolic-functions" in hook.hint.advice
    for s in lib.symbols:
        if s.hint is not None:
            assert "-fvisibility=hidden" not in s.hint.advice, (s.name, s.hint.advice)


def test_visibility_advice_is_conditional_where_the_linker_hides_nothing(advice_lib):
    hook = _symbol(analyze(str(advice_lib)), "parse_hook")
    assert "-fvisibility=hidden for what is not API" in hook.hint.advice
    assert "aliases" in hook.hint.advice


# -- toolchain objects get no advice -----------------------------------------------------------


def test_toolchain_objects_get_no_hint(tmp_path):
    source = """
#include <stdexcept>
int checked(int x) { try { if (x < 0) throw std::runtime_error("neg"); return x; }
                     catch (const std::exception &) { return -1; } }
"""
    path = build_library(tmp_path, "eh", source, lang="c++")
    names = {s["name"] for s in oracle.symbols(path)}
    lib = analyze(str(path))
    found = [n for n in ("DW.ref.__gxx_personality_v0", "__dso_handle", "completed.0")
             if n in names and lib.symbol(n) is not None]
    assert "DW.ref.__gxx_personality_v0" in found, sorted(names)
    for name in found:
        assert lib.symbol(name).hint is None, (name, lib.symbol(name).hint)


# -- records mixing strings and function pointers --------------------------------------------------


def test_records_of_names_and_functions_get_the_restructuring_hint(advice_lib):
    lib = analyze(str(advice_lib))
    commands = _symbol(lib, "commands")
    # cJSON-style: half of the words point to exported functions.
    assert commands.targets.get("own_export", 0) >= 4 and commands.targets.get("rodata", 0) == 6
    assert commands.hint.kind == "mixed_records"
    assert "enum" in commands.hint.advice and "string blob" in commands.hint.advice
    config = _symbol(lib, "configuration_table")
    assert config.hint.kind == "mixed_records"
    assert "10 function pointers with numbers" in config.hint.advice
    # The relocations nm and readelf see in it: one per record.
    assert oracle.relocations_per_symbol(advice_lib)["configuration_table"] == 10


# -- small pointer-free tables in .data ------------------------------------------------------------


def test_small_writable_table_without_pointers_gets_const(advice_lib, tmp_path):
    info = next(s for s in oracle.symbols(advice_lib) if s["name"] == "CapRTLCharTypes")
    assert info["section"] == ".data" and info["size"] == 512
    table = _symbol(analyze(str(advice_lib)), "CapRTLCharTypes")
    assert table.hint.kind == "writable_no_pointers" and "const" in table.hint.advice
    # Following it: the table leaves writable data.
    source = fixture("advice.c").read_text().replace("unsigned char CapRTLCharTypes",
                                                     "const unsigned char CapRTLCharTypes")
    fixed = build_library(tmp_path, "advice", source)
    info = next(s for s in oracle.symbols(fixed) if s["name"] == "CapRTLCharTypes")
    assert info["section"] == ".rodata"
    assert analyze(str(fixed)).symbol("CapRTLCharTypes") is None


# -- generated code and public ABI -------------------------------------------------------------


def test_generated_code_is_fixed_in_the_generator(tmp_path):
    path = build_library(tmp_path, "events", fixture("events.eo.c"), flags=["-g"])
    lib = analyze(str(path))
    event = _symbol(lib, "_EFL_UI_A_EVENT_CHANGED")
    assert event.source is not None and event.source.split(":")[0].endswith("events.eo.c")
    assert "generator" in event.hint.advice and "events.eo.c" in event.hint.advice


def test_exported_tables_say_the_fix_is_an_abi_change(advice_lib):
    lib = analyze(str(advice_lib))
    exported = {s["name"] for s in oracle.symbols(advice_lib, dynamic=True)}
    assert "level_names" in exported and "configuration_table" not in exported
    assert "public ABI" in _symbol(lib, "level_names").hint.advice
    assert "public ABI" not in _symbol(lib, "configuration_table").hint.advice


# -- strings told from other read-only data ---------------------------------------------------


def _targets(path: Path, name: str) -> list[int]:
    """Addends (RELA) of the relocations inside symbol `name`, from readelf -rW and nm."""
    info = next(s for s in oracle.symbols(path) if s["name"] == name)
    return [r.addend for r in oracle.relocations(path)
            if info["address"] <= r.offset < info["address"] + info["size"]]


def test_pointers_to_numeric_tables_are_not_called_strings(advice_lib):
    if oracle.elf_header(advice_lib)["Class"] != "ELF64" or not _targets(advice_lib,
                                                                       "static_l_desc")[0]:
        pytest.skip("needs RELA addends")
    objects = {s["address"]: s["name"] for s in oracle.symbols(advice_lib)
               if s["section"] == ".rodata"}
    lib = analyze(str(advice_lib))
    for name in ("static_l_desc", "static_d_desc"):
        targets = _targets(advice_lib, name)
        # The independent facts: every target is the start of a named const table.
        assert {objects.get(t) for t in targets} <= {"static_ltree", "extra_lbits",
                                                     "extra_dbits"}, targets
        s = _symbol(lib, name)
        assert s.targets == {"rodata": 2} and s.string_targets == 0
        assert s.hint.kind == "pointer_table" and "not strings" in s.hint.advice
        assert "string" not in s.hint.advice.replace("not strings", "")
    # A real string table: each target is NUL-terminated text right after a NUL.
    rodata = oracle.sections(advice_lib)[".rodata"]
    data = oracle.section_bytes(advice_lib, ".rodata")
    targets = _targets(advice_lib, "level_names")
    for t in targets:
        at = t - rodata["address"]
        end = data.index(b"\0", at)
        assert data[at:end].decode("ascii").isprintable() and end > at
    names = _symbol(lib, "level_names")
    assert names.string_targets == len(targets) == 8
    assert names.hint.kind == "string_pointer_table"


# -- MIPS: the GOT's global entries, written without records -----------------------------------


def test_mips_got_hint_counts_global_entries_and_bsymbolic_binds_them(tmp_path):
    """MIPS has no GLOB_DAT: the loader fills one global GOT entry per symbol from
    DT_MIPS_GOTSYM. The hint counts those of own exports as readelf -A lists them, and
    -Wl,-Bsymbolic binds them at link time (local entries, still written at load)."""
    from libbuild import have_cross

    target = "mipsel-linux-gnu"
    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    path = build_library(tmp_path, "cross", fixture("cross.c"), target=target)
    defined = _own_defined(path)
    names = [name for _, name in oracle.mips_got_entries(path).values() if name is not None]
    own = [name for name in names if name in defined]
    assert own and len(own) < len(names)
    got = _symbol(analyze(str(path)), "<unattributed in .got>")
    assert got.hint is not None
    assert f"global GOT entries (written without records): {len(own)} of {len(names)} " \
        "point to this library's own exports" in got.hint.advice
    assert "GLOB_DAT" not in got.hint.advice
    fixed = build_library(tmp_path / "fixed", "cross", fixture("cross.c"), target=target,
                          flags=["-Wl,-Bsymbolic"])
    entries = oracle.mips_got_entries(fixed)
    assert not [name for _, name in entries.values() if name in _own_defined(fixed)]
    after = _symbol(analyze(str(fixed)), "<unattributed in .got>")
    section = oracle.sections(fixed)[".got"]
    records = [r for r in oracle.relocations(fixed) if r.type != "R_MIPS_NONE"
               and section["address"] <= r.offset < section["address"] + section["size"]]
    # Still written at load: every entry (and the TLS slots records fill) on its page.
    assert after.relocations == len(entries) + len(records) and after.pages >= 1
    assert after.hint is None or "own exports" not in after.hint.advice
