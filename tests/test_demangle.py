"""Demangled names agree with binutils' c++filt run on its own, name by name, as arguments.

The oracle is a separate `c++filt NAME...` run (arguments, not the batched stdin pipe that
relrocheck uses, and without relrocheck's sharing of one type between _ZTV/_ZTI names), on
the real symbol names of libraries built here and of system libraries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import oracle
import pytest
from libbuild import build_library, fixture

from relrocheck import demangle
from relrocheck.analyze import analyze
from relrocheck.demangle import Demangler, demangle_names, is_mangled

LIBSTDCXX = Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")

pytestmark = pytest.mark.skipif(shutil.which("c++filt") is None, reason="no c++filt")


def cxxfilt(names: list[str], style: str | None = None) -> dict[str, str]:
    """name -> c++filt's text, each name passed as an argument."""
    out: dict[str, str] = {}
    for start in range(0, len(names), 500):  # stay far below ARG_MAX
        chunk = names[start:start + 500]
        argv = ["c++filt"] + (["-s", style] if style else []) + ["--", *chunk]
        lines = subprocess.run(argv, capture_output=True, text=True, check=True,
                               env=dict(os.environ, LC_ALL="C")).stdout.splitlines()
        assert len(lines) == len(chunk)
        out.update(zip(chunk, lines))
    return out


def mangled_names(path: Path, dynamic: bool = False) -> list[str]:
    return sorted({s["name"] for s in oracle.symbols(path, dynamic=dynamic)
                   if s["name"].startswith(("_Z", "_R"))})


def check_against_cxxfilt(names: list[str]) -> None:
    assert names
    ours = demangle_names(names)
    expected = cxxfilt(names)
    for name in names:
        want = expected[name]
        assert ours.get(name, name) == want, name


@pytest.fixture(scope="module")
def cxx_libs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    build = tmp_path_factory.mktemp("demangle")
    return [build_library(build, "cxx_vtables", fixture("cxx_vtables.cpp"), lang="c++"),
            build_library(build, "cxx_globals", fixture("cxx_globals.cpp"), lang="c++")]


def test_cxx_fixture_names_match_cxxfilt(cxx_libs):
    names = [n for lib in cxx_libs for n in mangled_names(lib)]
    assert any(n.startswith("_ZTV") for n in names) and any(n.startswith("_ZTI") for n in names)
    assert any(n.startswith("_ZN") for n in names)
    check_against_cxxfilt(names)


@pytest.mark.skipif(not LIBSTDCXX.exists(), reason="no system libstdc++")
def test_libstdcxx_names_match_cxxfilt():
    # Thousands of real names: templates, ABI tags, special names (_ZTV/_ZTI/_ZTS/_ZTT).
    check_against_cxxfilt(mangled_names(LIBSTDCXX, dynamic=True))


def test_rust_legacy_and_v0_names_match_cxxfilt(tmp_path):
    if shutil.which("rustc") is None:
        pytest.skip("no rustc")
    source = tmp_path / "lib.rs"
    source.write_text(
        "pub trait Speak { fn speak(&self) -> String; }\n"
        "pub struct Dog<T> { pub name: T }\n"
        "impl Speak for Dog<&'static str> { fn speak(&self) -> String { self.name.to_string() } }\n"
        "pub static NAMES: [&str; 3] = [\"a\", \"b\", \"c\"];\n"
        "#[no_mangle] pub extern \"C\" fn speak_len(i: usize) -> usize {\n"
        "    let d: Box<dyn Speak> = Box::new(Dog { name: NAMES[i % 3] });\n"
        "    d.speak().len()\n}\n")
    names: list[str] = []
    # rustc's default is still legacy for the crate itself (the prebuilt std may use v0).
    for version, flags in (("default", []), ("v0", ["-C", "symbol-mangling-version=v0"])):
        out = tmp_path / f"lib{version}.so"
        subprocess.run(["rustc", "--crate-type", "cdylib", *flags, "-o", str(out), str(source)],
                       check=True, capture_output=True)
        names += mangled_names(out)
    legacy = [n for n in names if n.startswith("_ZN") and "17h" in n]
    v0 = [n for n in names if n.startswith("_R")]
    assert legacy and v0
    assert any("$LT$" in n for n in legacy)  # escapes that only a Rust demangler decodes
    check_against_cxxfilt(legacy + v0)
    # Legacy Rust decoded as Rust ($LT$ escapes gone), the same text as `c++filt -s rust`.
    ours = demangle_names(legacy)
    rust = cxxfilt(legacy, style="rust")
    assert all(ours.get(n, n) == rust[n] for n in legacy)
    assert not any("$LT$" in ours.get(n, "") for n in legacy)


def test_analyze_fills_demangled_and_keeps_raw_names(cxx_libs):
    lib = analyze(str(cxx_libs[0]))
    expected = cxxfilt(mangled_names(cxx_libs[0]))
    vtable = lib.symbol("_ZTVN7fixture6CircleE")
    assert vtable is not None
    assert vtable.demangled == expected["_ZTVN7fixture6CircleE"] == "vtable for fixture::Circle"
    assert lib.symbol("vtable for fixture::Circle") is vtable  # lookup by either name
    for s in lib.symbols:
        if s.name in expected and expected[s.name] != s.name:
            assert s.demangled == expected[s.name]
        elif not is_mangled(s.name):
            assert s.demangled is None
    doc = json.loads(subprocess.run(
        [sys.executable, "-m", "relrocheck", "report", "--format", "json", str(cxx_libs[0])],
        capture_output=True, text=True, check=True).stdout)
    by_name = {s["name"]: s for s in doc["libraries"][0]["symbols"]}
    assert by_name["_ZTVN7fixture6CircleE"]["demangled"] == "vtable for fixture::Circle"


def test_c_library_gets_no_demangled_names(tmp_path):
    lib = analyze(str(build_library(tmp_path, "pt", fixture("pointer_tables.c"))))
    assert all(s.demangled is None for s in lib.symbols)


def test_without_cxxfilt_names_stay_raw(cxx_libs, monkeypatch):
    assert Demangler("/nonexistent/c++filt").result() == {}
    with Demangler("/nonexistent/c++filt") as d:
        d.submit(["_ZTVN7fixture6CircleE"])
        assert d.result() == {}
    monkeypatch.setattr(demangle, "CXXFILT", "/nonexistent/c++filt")
    lib = analyze(str(cxx_libs[0]))
    assert all(s.demangled is None for s in lib.symbols)
    assert lib.symbol("_ZTVN7fixture6CircleE").hint.kind == "cxx_vtable"  # the rest unchanged
    # Through the CLI with no c++filt on PATH: same report, raw names.
    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", "--format", "json",
                          str(cxx_libs[0])], capture_output=True, text=True, check=False,
                         env=dict(os.environ, PATH="/nonexistent"))
    assert run.returncode == 0, run.stderr
    symbols = json.loads(run.stdout)["libraries"][0]["symbols"]
    assert all(s["demangled"] is None for s in symbols)


def test_only_mangled_looking_names_are_sent():
    assert is_mangled("_ZTV3Foo") and is_mangled("_RNvCs1_3foo3bar")
    assert not is_mangled("names") and not is_mangled("<unattributed in .got>")
    assert demangle_names(["names", "main", "_Z"]) == {}


def test_imports_with_only_the_declared_dependencies():
    # typing_extensions is not a dependency of relrocheck: importing it would fail (or cost
    # start-up) on a clean install. Block it and import every module that names c++filt.
    code = ("import sys; sys.modules['typing_extensions'] = None; "
            "import relrocheck.demangle, relrocheck.analyze, relrocheck.scan")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 0, run.stderr
