"""`relrocheck explain`: the relocated words of a symbol are exactly readelf's relocations whose
offsets fall in the symbol's range as nm prints it, with readelf's types, symbols and
addends, and strings read back from readelf's hex dump of the target section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import oracle
import pytest
from libbuild import BuildError, build_library, fixture, have_cross, sstrip_copy, strip_copy

PAGE = 4096


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    build = tmp_path_factory.mktemp("explain")
    out = {
        "c": build_library(build, "pointer_tables", fixture("pointer_tables.c")),
        "cxx": build_library(build, "cxx_vtables", fixture("cxx_vtables.cpp"), lang="c++"),
    }
    out["stripped"] = strip_copy(out["c"])
    try:
        out["relr"] = build_library(build / "relr", "pointer_tables", fixture("pointer_tables.c"),
                                    flags=["-Wl,-z,pack-relative-relocs"])
    except BuildError:
        pass
    if have_cross("i686-linux-gnu"):  # REL: addends stored in the relocated words
        out["i386"] = build_library(build / "i386", "cross", fixture("cross.c"),
                                    target="i686-linux-gnu")
    return out


def explain(path: Path, symbol: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "relrocheck", "explain", "--format", "json",
                          str(path), symbol], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    assert len(document["symbols"]) == 1
    return document["symbols"][0]


def nm_range(path: Path, name: str) -> tuple[int, int]:
    spans = {(s["address"], s["address"] + s["size"]) for s in oracle.symbols(path)
             if s["name"] == name}
    assert len(spans) == 1, spans
    return spans.pop()


def readelf_in(path: Path, start: int, end: int) -> list[oracle.Relocation]:
    return sorted((r for r in oracle.relocations(path) if start <= r.offset < end),
                  key=lambda r: r.offset)


def c_string_at(path: Path, address: int) -> str:
    for name, info in oracle.sections(path).items():
        if info["address"] <= address < info["address"] + info["size"] and info["type"] != "NOBITS":
            data = oracle.section_bytes(path, name)
            start = address - info["address"]
            return data[start:data.index(b"\0", start)].decode()
    raise AssertionError(f"no section holds {address:#x}")


def check_symbol(path: Path, name: str) -> dict:
    start, end = nm_range(path, name)
    expected = readelf_in(path, start, end)
    got = explain(path, name)
    words = got["words"]
    assert [(w["address"], w["type"]) for w in words] == [(r.offset, r.type) for r in expected]
    for w, r in zip(words, expected):
        assert w["offset"] == r.offset - start
        assert w["page"] == r.offset // PAGE * PAGE
        if r.symbol:  # symbolic: readelf's symbol and addend
            assert w["target"]["symbol"] == r.symbol
            assert w["target"]["addend"] == (r.addend or 0)
        elif r.addend is not None:  # RELA RELATIVE: the addend is the target address
            assert w["target"]["address"] == r.addend
    assert got["pages"] == sorted({r.offset // PAGE * PAGE for r in expected})
    return got


@pytest.mark.parametrize("name", ["names", "const_names", "file_ops", "big_table",
                                  "exported_counter_ptr", "hidden_counter_ptr"])
def test_words_match_readelf_in_the_nm_range(libs, name):
    check_symbol(libs["c"], name)


def test_string_targets_are_the_strings_in_rodata(libs):
    path = libs["c"]
    got = check_symbol(path, "names")
    assert len(got["words"]) == 40
    for w in got["words"]:
        target = w["target"]
        assert target["section"] == ".rodata"
        assert target["string"] == c_string_at(path, target["address"])
    assert [w["target"]["string"] for w in got["words"][:3]] == ["zero", "one", "two"]


def test_vtable_by_raw_and_demangled_name(libs):
    path = libs["cxx"]
    raw = check_symbol(path, "_ZTVN7fixture6CircleE")
    assert raw == explain(path, "vtable for fixture::Circle")
    assert raw["symbol"]["demangled"] == "vtable for fixture::Circle"
    slots = [w["target"]["demangled"] for w in raw["words"]]
    assert "fixture::Circle::area() const" in slots


def test_relr_words_match_readelf(libs):
    if "relr" not in libs:
        pytest.skip("linker without -z pack-relative-relocs")
    path = libs["relr"]
    assert ".relr.dyn" in oracle.sections(path)
    got = check_symbol(path, "names")
    assert {w["table"] for w in got["words"]} == {".relr.dyn"}
    assert all(w["target"]["string"] for w in got["words"])


def test_rel_words_match_readelf(libs):
    if "i386" not in libs:
        pytest.skip("no i686 cross toolchain")
    got = check_symbol(libs["i386"], "cross_names")
    assert [w["target"]["string"] for w in got["words"][:2]] == ["alpha", "bravo"]


def test_unattributed_bucket_is_its_section_minus_symbols(libs):
    path = libs["stripped"]
    section = oracle.sections(path)[".data.rel.ro"]
    start, end = section["address"], section["address"] + section["size"]
    owned = [(s["address"], s["address"] + s["size"]) for s in oracle.symbols(path, dynamic=True)
             if s["section"] == ".data.rel.ro" and s["size"]]
    expected = [r for r in readelf_in(path, start, end)
                if not any(a <= r.offset < b for a, b in owned)]
    got = explain(path, "<unattributed in .data.rel.ro>")
    assert [w["address"] for w in got["words"]] == [r.offset for r in expected]
    assert len(expected) >= 4  # file_ops, a local symbol stripped away


def test_text_output(libs):
    run = subprocess.run([sys.executable, "-m", "relrocheck", "explain", str(libs["c"]), "names"],
                         capture_output=True, text=True, check=True)
    assert "40 relocated words on 1 page" in run.stdout
    assert '"zero"' in run.stdout
    start, end = nm_range(libs["c"], "names")
    assert readelf_in(libs["c"], start, end)[0].type in run.stdout
    assert "hint (string_pointer_table)" in run.stdout


def test_unknown_symbol_is_an_error_with_close_matches(libs):
    run = subprocess.run([sys.executable, "-m", "relrocheck", "explain", str(libs["c"]),
                          "nmaes"], capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert run.stderr.startswith("relrocheck: error:") and "Traceback" not in run.stderr
    assert "close matches: names" in run.stderr
    run = subprocess.run([sys.executable, "-m", "relrocheck", "explain", str(libs["c"]),
                          "no_such_thing_at_all"], capture_output=True, text=True, check=False)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("target", ["mipsel-linux-gnu", "mips64el-linux-gnuabi64"])
def test_mips_got_entries_are_explained_as_readelf_lists_them(tmp_path: Path,
                                                              target: str) -> None:
    """The loader writes the MIPS primary GOT without records: explain lists every entry the
    report counts, local ones pointing where their initial value says, global ones at their
    symbol, as readelf -A's "Primary GOT" gives them."""
    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    path = build_library(tmp_path, "cross", fixture("cross.c"), target=target)
    entries = oracle.mips_got_entries(path)
    got = oracle.sections(path)[".got"]
    start, end = got["address"], got["address"] + got["size"]
    assert set(entries) <= set(range(start, end))
    # Past the entries, TLS slots that records fill (readelf -rW lists them).
    records = {r.offset: r.type for r in readelf_in(path, start, end) if r.type != "R_MIPS_NONE"}
    words = explain(path, "<unattributed in .got>")["words"]
    assert sorted(w["address"] for w in words) == sorted([*entries, *records])
    globals_seen = 0
    for w in words:
        if w["address"] in records:
            assert w["type"] == records[w["address"]]
            continue
        initial, name = entries[w["address"]]
        if name is None:
            assert w["type"] == "MIPS GOT local entry (no record)" and w["class"] == "relative"
            assert w["target"]["address"] == initial
        else:
            globals_seen += 1
            assert w["type"] == "MIPS GOT global entry (no record)" and w["class"] == "symbolic"
            assert w["target"]["symbol"] == name
    assert globals_seen >= 2


def test_a_library_without_section_headers_is_explained_by_its_dynamic_symbols(libs, tmp_path):
    """sstrip'ed: the words, their strings and the symbols they are bound to are still those
    readelf and nm give the original (explain reads the same stand-ins as the report)."""
    original = libs["c"]
    path = sstrip_copy(original, tmp_path / "sstripped.so")
    for name in ("names", "exported_counter_ptr"):
        start, end = nm_range(original, name)
        expected = readelf_in(original, start, end)
        words = explain(path, name)["words"]
        assert [(w["address"], w["type"]) for w in words] == [(r.offset, r.type)
                                                              for r in expected]
        for w, r in zip(words, expected):
            if r.symbol:
                assert w["target"]["symbol"] == r.symbol
            else:
                assert w["target"]["string"] == c_string_at(original, r.addend)
