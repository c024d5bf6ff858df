"""Fix hints: each kind comes out of a realistic source, and following the advice works.

Libraries are built at test time from tests/fixtures; sizes used to check the advice text
come from nm (tests/oracle.py), not from relrocheck.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from pathlib import Path

import oracle
import pytest
from libbuild import BuildError, build_library, fixture, strip_copy

from relrocheck.analyze import analyze
from relrocheck.hints import HINT_KINDS, LibraryFacts, classify
from relrocheck.model import Library, Symbol

HOST_X86_64 = platform.machine() == "x86_64"


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    build = tmp_path_factory.mktemp("hints")
    out = {
        "pointer_tables": build_library(build, "pointer_tables", fixture("pointer_tables.c")),
        "hints": build_library(build, "hints", fixture("hints.c")),
        "cxx_vtables": build_library(build, "cxx_vtables", fixture("cxx_vtables.cpp"),
                                     lang="c++"),
        "cxx_globals": build_library(build, "cxx_globals", fixture("cxx_globals.cpp"),
                                     lang="c++"),
        # The advice applied: hidden visibility, -Bsymbolic.
        "hidden": build_library(build / "hidden", "pointer_tables", fixture("pointer_tables.c"),
                                flags=["-fvisibility=hidden"]),
        "bsymbolic": build_library(build / "bsymbolic", "pointer_tables",
                                   fixture("pointer_tables.c"), flags=["-Wl,-Bsymbolic"]),
    }
    out["stripped"] = strip_copy(out["pointer_tables"])
    if HOST_X86_64:
        out["textrel"] = build_library(build, "textrel", fixture("textrel.c"))
    return out


def _symbol(lib: Library, name: str) -> Symbol:
    found = lib.symbol(name)
    assert found is not None, f"{name} not in {lib.path}: {[s.name for s in lib.symbols]}"
    return found


def _kind(lib: Library, name: str) -> str | None:
    s = _symbol(lib, name)
    return s.hint.kind if s.hint else None


def _nm_size(path: Path, name: str) -> int:
    sizes = {s["size"] for s in oracle.symbols(path) if s["name"] == name}
    assert len(sizes) == 1, sizes
    return sizes.pop()


# -- one realistic source per kind -------------------------------------------------------------


def test_string_pointer_table_for_tables_records_and_lone_pointers(libs):
    tables = analyze(str(libs["pointer_tables"]))
    names = _symbol(tables, "names")
    assert names.hint is not None and names.hint.kind == "string_pointer_table"
    assert "offsets" in names.hint.advice
    # names is in .data: the advice also says what `const` alone would (not) buy.
    assert ".data.rel.ro" in names.hint.advice
    const_names = _symbol(tables, "const_names")
    assert const_names.hint is not None and const_names.hint.kind == "string_pointer_table"
    assert ".data.rel.ro" not in const_names.hint.advice  # already const: nothing to add

    hints = analyze(str(libs["hints"]))
    assert _kind(hints, "keywords") == "string_pointer_table"
    assert "records" in _symbol(hints, "keywords").hint.advice
    lone = _symbol(hints, "library_version")
    assert lone.hint is not None and lone.hint.kind == "string_pointer_table"
    assert "array" in lone.hint.advice


def test_writable_pointer_array_for_a_callback_table_in_data(libs):
    lib = analyze(str(libs["hints"]))
    handlers = _symbol(lib, "event_handlers")
    assert handlers.section == ".data"
    assert handlers.hint is not None and handlers.hint.kind == "writable_pointer_array"
    assert "*const" in handlers.hint.advice and ".data.rel.ro" in handlers.hint.advice


def test_pointer_table_for_a_const_dispatch_table(libs):
    lib = analyze(str(libs["hints"]))
    table = _symbol(lib, "opcode_table")
    assert table.section == ".data.rel.ro"
    assert table.hint is not None and table.hint.kind == "pointer_table"
    assert "functions" in table.hint.advice


def test_sparse_pointers_says_how_many_pages_the_pointer_free_part_takes(libs):
    path = libs["pointer_tables"]
    lib = analyze(str(path))
    big = _symbol(lib, "big_table")
    assert big.hint is not None and big.hint.kind == "sparse_pointers"
    word = 8 if oracle.elf_header(path)["Class"] == "ELF64" else 4
    pointer_free = _nm_size(path, "big_table") - word  # one pointer, the rest payload
    assert f"{math.ceil(pointer_free / 4096)} pages" in big.hint.advice


def test_cxx_vtables_and_typeinfo(libs):
    lib = analyze(str(libs["cxx_vtables"]))
    vtables = [s for s in lib.symbols if s.name.startswith("_ZTV")]
    typeinfo = [s for s in lib.symbols if s.name.startswith("_ZTI")]
    assert len(vtables) == 3 and len(typeinfo) == 3
    assert {s.hint.kind for s in vtables if s.hint} == {"cxx_vtable"}
    assert all(s.hint is not None for s in vtables)
    assert {s.hint.kind for s in typeinfo if s.hint} == {"cxx_typeinfo"}
    advice = vtables[0].hint.advice
    assert "-fexperimental-relative-c++-abi-vtables" in advice
    assert "-Bsymbolic" in advice  # the slots point to exported virtual functions


def test_relative_vtables_remove_the_vtables_from_writable_data(libs, tmp_path):
    try:
        path = build_library(tmp_path, "relvt", fixture("cxx_vtables.cpp"), lang="c++",
                             compiler="clang++",
                             flags=["-fexperimental-relative-c++-abi-vtables"])
    except (BuildError, FileNotFoundError):
        pytest.skip("clang++ with relative vtables not available")
    lib = analyze(str(path))
    assert not [s for s in lib.symbols if s.name.startswith("_ZTV") and s.relocations]


def test_symbolic_to_own_export_and_what_the_fixes_do(libs):
    lib = analyze(str(libs["pointer_tables"]))
    ptr = _symbol(lib, "exported_counter_ptr")
    assert ptr.by_class.get("symbolic") == 1
    assert ptr.hint is not None and ptr.hint.kind == "symbolic_to_own_export"
    assert "-fvisibility=hidden" in ptr.hint.advice and "-Bsymbolic" in ptr.hint.advice
    # A pointer to a hidden variable is RELATIVE already: no symbolic advice.
    assert _kind(lib, "hidden_counter_ptr") == "writable_pointer_array"
    # -Bsymbolic applied: the relocation becomes RELATIVE and the hint goes away.
    fixed = analyze(str(libs["bsymbolic"]))
    assert _symbol(fixed, "exported_counter_ptr").by_class == {"relative": 1}
    assert _kind(fixed, "exported_counter_ptr") == "writable_pointer_array"


def test_got_hint_only_while_the_got_holds_own_exports(libs):
    lib = analyze(str(libs["pointer_tables"]))
    got = _symbol(lib, "<unattributed in .got>")
    assert got.targets.get("own_export", 0) > 0
    assert got.hint is not None and got.hint.kind == "got"
    # -fvisibility=hidden applied: only other libraries' symbols stay, nothing to fix.
    hidden = analyze(str(libs["hidden"]))
    hidden_got = _symbol(hidden, "<unattributed in .got>")
    assert hidden_got.targets.get("own_export", 0) == 0
    assert hidden_got.hint is None


def test_init_array_for_global_objects_with_constructors(libs):
    lib = analyze(str(libs["cxx_globals"]))
    init = _symbol(lib, "<unattributed in .init_array>")
    assert init.relocations >= 2  # the C runtime's entry and this file's initializer
    assert init.hint is not None and init.hint.kind == "init_array"
    # A C library has only the C runtime's own entry: no hint.
    plain = analyze(str(libs["pointer_tables"]))
    assert _symbol(plain, "<unattributed in .init_array>").hint is None


def test_unattributed_in_a_stripped_library(libs):
    lib = analyze(str(libs["stripped"]))
    assert lib.symbol_table == ".dynsym"
    bucket = _symbol(lib, "<unattributed in .data.rel.ro>")  # file_ops is local: no name left
    assert bucket.relocations >= 4
    assert bucket.hint is not None and bucket.hint.kind == "unattributed"
    assert "stripped" in bucket.hint.advice


@pytest.mark.skipif(not HOST_X86_64, reason="the TEXTREL fixture is x86-64 assembly")
def test_textrel_names_the_section_and_the_cause(libs):
    path = libs["textrel"]
    assert "TEXTREL" in oracle.dynamic(path)
    lib = analyze(str(path))
    assert lib.textrel_sections == (".text",)
    bucket = _symbol(lib, "<unattributed in .text>")
    assert bucket.hint is not None and bucket.hint.kind == "textrel"
    assert ".text" in bucket.hint.advice and "-fPIC" in bucket.hint.advice


def test_writable_no_pointers_for_a_big_plain_array(libs):
    lib = analyze(str(libs["pointer_tables"]))
    assert _kind(lib, "plain_data") == "writable_no_pointers"
    assert _symbol(lib, "scratch_buffer").hint is None  # .bss: zero-fill, nothing to say


# -- the vocabulary ------------------------------------------------------------------------------


def test_every_produced_kind_is_documented(libs):
    produced = set()
    for path in libs.values():
        for s in analyze(str(path)).symbols:
            if s.hint is not None:
                produced.add(s.hint.kind)
                assert s.hint.advice.strip()
    assert produced <= set(HINT_KINDS)
    assert all(doc.strip() for doc in HINT_KINDS.values())
    expected = {"string_pointer_table", "writable_pointer_array", "pointer_table",
                "sparse_pointers", "cxx_vtable", "cxx_typeinfo", "symbolic_to_own_export",
                "got", "init_array", "unattributed", "writable_no_pointers"}
    if HOST_X86_64:
        expected.add("textrel")
    assert expected <= produced


def test_classify_is_pure_and_needs_only_the_model(libs):
    lib = analyze(str(libs["pointer_tables"]), demangle=False, sources=False)
    facts = LibraryFacts.of(lib)
    for s in lib.symbols:
        assert classify(s, facts) == s.hint


def test_hints_in_the_json_and_text_report(libs):
    path = str(libs["hints"])
    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", "--format", "json",
                          "--top", "0", path], capture_output=True, text=True, check=True)
    symbols = {s["name"]: s for s in json.loads(run.stdout)["libraries"][0]["symbols"]}
    assert symbols["event_handlers"]["hint"]["kind"] == "writable_pointer_array"
    assert symbols["event_handlers"]["hint"]["advice"]
    text = subprocess.run([sys.executable, "-m", "relrocheck", "report", "--top", "0", path],
                          capture_output=True, text=True, check=True).stdout
    assert "hint (writable_pointer_array):" in text
