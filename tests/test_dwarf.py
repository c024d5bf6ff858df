"""Source lines from DWARF: the line a table was written on, found by searching the fixture's
text (never hard-coded), for GCC and clang, DWARF 4 and 5, compressed and split debug info.
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

from relrocheck.analyze import analyze
from relrocheck.errors import UsageError

POINTER_TABLES = fixture("pointer_tables.c")
DWARF_CASES = fixture("dwarf_cases.cpp")
HAVE_CLANG = shutil.which("clang") is not None


def line_of(source: Path, text: str) -> int:
    """1-based number of the only line of `source` containing `text`."""
    lines = [i for i, line in enumerate(source.read_text().splitlines(), 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


# Symbol -> the text of the line that defines it in pointer_tables.c.
C_TABLES = {
    "names": "const char *names[40] = {",
    "const_names": "const char *const const_names[12] = {",
    "file_ops": "static const struct ops file_ops = {",
    "big_table": "const struct big_table big_table =",
    "exported_counter_ptr": "int *exported_counter_ptr = &exported_counter;",
    "plain_data": "int plain_data[8192]",
    "scratch_buffer": "char scratch_buffer[65536];",
}


def assert_sources(lib_path: Path, source: Path, expected: dict[str, str], **kwargs) -> None:
    lib = analyze(str(lib_path), **kwargs)
    for name, text in expected.items():
        s = lib.symbol(name)
        assert s is not None, name
        assert s.source is not None, f"{name}: no source in {lib_path}"
        file, _, line = s.source.rpartition(":")
        assert os.path.basename(file) == source.name, s.source
        assert int(line) == line_of(source, text), (name, s.source)


BUILDS = {
    "gcc": ("cc", ["-g"]),
    "gcc-dwarf4": ("cc", ["-gdwarf-4"]),
    "gcc-dwarf2": ("cc", ["-gdwarf-2"]),
    "gcc-compressed": ("cc", ["-g", "-gz=zlib"]),
    "gcc-compressed-gnu": ("cc", ["-g", "-gz=zlib-gnu"]),  # .zdebug_* sections
    "clang-dwarf5": ("clang", ["-g", "-gdwarf-5"]),  # locations through DW_OP_addrx
    "clang-dwarf4": ("clang", ["-g", "-gdwarf-4"]),
}


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_source_line_of_each_table(tmp_path, build):
    compiler, flags = BUILDS[build]
    if shutil.which(compiler) is None:
        pytest.skip(f"no {compiler}")
    lib = build_library(tmp_path, "pt", POINTER_TABLES, compiler=compiler, flags=flags)
    assert_sources(lib, POINTER_TABLES, C_TABLES)


@pytest.mark.parametrize("compiler", ["c++", "clang++"])
def test_cxx_static_member_namespace_and_function_local_tables(tmp_path, compiler):
    if shutil.which(compiler) is None:
        pytest.skip(f"no {compiler}")
    path = build_library(tmp_path, "dc", DWARF_CASES, lang="c++", compiler=compiler,
                         flags=["-g"])
    lib = analyze(str(path))
    sources = {s.demangled: s.source for s in lib.symbols if s.demangled}
    keys = sources["config::keys"]
    local = sources["cache_levels::cache_names"]
    assert keys.endswith(f"dwarf_cases.cpp:{line_of(DWARF_CASES, 'const char *const keys[] =')}")
    assert local.endswith(f"dwarf_cases.cpp:{line_of(DWARF_CASES, 'cache_names[] =')}")
    # The definition of a static member refers to its declaration in the class
    # (DW_AT_specification). GCC records the definition's own line there; clang records
    # only the declaration's.
    definition = line_of(DWARF_CASES, "Palette::colours[] =")
    declaration = line_of(DWARF_CASES, "static const char *const colours[];")
    file, _, line = sources["Palette::colours"].rpartition(":")
    assert file.endswith("dwarf_cases.cpp")
    if compiler == "c++":
        assert int(line) == definition
    else:
        assert int(line) in (definition, declaration)


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, Path]:
    """A library stripped of its debug info, and the debug file objcopy made of it."""
    if shutil.which("objcopy") is None:
        pytest.skip("no objcopy")
    lib = build_library(tmp_path, "pt", POINTER_TABLES, flags=["-g"])
    debug = tmp_path / "libpt.so.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(debug)], check=True)
    subprocess.run(["objcopy", "--strip-debug", str(lib)], check=True)
    return lib, debug


def test_split_debug_found_through_gnu_debuglink(split):
    lib, debug = split
    assert all(s.source is None for s in analyze(str(lib)).symbols)  # no link yet
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(lib)], check=True,
                   cwd=debug.parent)
    assert_sources(lib, POINTER_TABLES, C_TABLES)
    # The usual place, a .debug folder next to the library, works as well.
    (lib.parent / ".debug").mkdir()
    debug.rename(lib.parent / ".debug" / debug.name)
    assert_sources(lib, POINTER_TABLES, C_TABLES)


def test_split_debug_given_with_debug_file(split):
    lib, debug = split
    assert_sources(lib, POINTER_TABLES, C_TABLES, debug_file=str(debug))
    run = subprocess.run([sys.executable, "-m", "relrocheck", "explain", str(lib), "names",
                          "--debug-file", str(debug)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert f"pointer_tables.c:{line_of(POINTER_TABLES, C_TABLES['names'])}" in run.stdout
    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", "--format", "json",
                          str(lib), "--debug-file", str(debug)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr
    (entry,) = json.loads(run.stdout)["libraries"]
    names = next(s for s in entry["symbols"] if s["name"] == "names")
    line = line_of(POINTER_TABLES, C_TABLES["names"])
    assert names["source"].endswith(f"pointer_tables.c:{line}")
    # One debug file belongs to one library.
    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", str(lib), str(lib),
                          "--debug-file", str(debug)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "one library" in run.stderr


def test_debug_file_of_another_build_is_refused(split, tmp_path):
    lib, _debug = split
    other = build_library(tmp_path / "other", "pt", "int other_table[4] = {1};", flags=["-g"])
    with pytest.raises(UsageError, match="another build"):
        analyze(str(lib), debug_file=str(other))
    run = subprocess.run([sys.executable, "-m", "relrocheck", "explain", str(lib), "names",
                          "--debug-file", str(other)], capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert run.stderr.startswith("relrocheck: error:") and "Traceback" not in run.stderr
    with pytest.raises(UsageError, match="no such file"):
        analyze(str(lib), debug_file=str(tmp_path / "missing.debug"))


def test_debuglink_to_a_stale_file_is_ignored(split, tmp_path):
    lib, debug = split
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(lib)], check=True,
                   cwd=debug.parent)
    # Replace the debug file by one of another build under the same name.
    stale = build_library(tmp_path / "stale", "pt", "int stale_table[4] = {1};", flags=["-g"])
    shutil.copy(stale, debug)
    assert all(s.source is None for s in analyze(str(lib)).symbols)


def test_without_debug_info_nothing_is_read_and_nothing_else_changes(tmp_path):
    lib = build_library(tmp_path, "pt", POINTER_TABLES)
    with_sources = analyze(str(lib))
    assert all(s.source is None for s in with_sources.symbols)
    assert with_sources == analyze(str(lib), sources=False)
    # Zero cost: pyelftools is not even imported.
    probe = ("import sys; from relrocheck.analyze import analyze; "
             f"analyze({str(lib)!r}); print('elftools' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_sources_leave_every_other_field_alone(tmp_path):
    lib = build_library(tmp_path, "pt", POINTER_TABLES, flags=["-g"])
    with_sources = analyze(str(lib))
    without = analyze(str(lib), sources=False)
    assert any(s.source for s in with_sources.symbols)
    for a, b in zip(with_sources.symbols, without.symbols):
        assert a.name == b.name
        assert {k: v for k, v in vars(a).items() if k != "source"} == \
            {k: v for k, v in vars(b).items() if k != "source"}


def test_a_stripped_library_is_attributed_through_its_debug_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With its debug file, a stripped library's relocations land on the same symbols as in
    the unstripped build (nm + readelf on the unstripped copy are the oracle)."""
    if shutil.which("objcopy") is None:
        pytest.skip("no objcopy")
    lib = build_library(tmp_path, "pt", POINTER_TABLES, flags=["-g"])
    unstripped = tmp_path / "unstripped.so"
    shutil.copy(lib, unstripped)
    debug = tmp_path / "libpt.so.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(debug)], check=True)
    subprocess.run(["objcopy", "--strip-all", str(lib)], check=True)
    bare = analyze(str(lib))
    assert bare.symbol_table == ".dynsym" and bare.symbols_from is None
    assert bare.symbol("file_ops") is None  # a local symbol: gone with .symtab

    import relrocheck.analyze as analyze_module

    measured: list[str | None] = []
    real_measure = analyze_module.measure

    def counting_measure(path: str, **options):  # type: ignore[no-untyped-def]
        measured.append(options.get("symbols_from"))
        return real_measure(path, **options)

    monkeypatch.setattr(analyze_module, "measure", counting_measure)
    named = analyze(str(lib), debug_file=str(debug))
    assert measured == [str(debug)]  # found before measuring: measured once, with its names
    assert named.symbol_table == ".symtab" and named.symbols_from == str(debug)
    expected = oracle.relocations_per_symbol(unstripped)
    for name in ("names", "const_names", "file_ops", "big_table"):
        symbol = named.symbol(name)
        assert symbol is not None and symbol.relocations == expected[name] > 0, name
    # The numbers of the library itself do not change.
    assert named.relocations == bare.relocations and named.pages == bare.pages
    # Found through .gnu_debuglink as well, and reported so.
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(lib)], check=True,
                   cwd=debug.parent)
    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", str(lib)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert f"(.symtab of {debug})" in run.stdout and "file_ops" in run.stdout


def _set_debuglink(lib: Path, name: str, target: Path) -> None:
    """A .gnu_debuglink naming `name` (any bytes, as a crafted file may hold), with the CRC of
    `target`: objcopy --add-gnu-debuglink would store the base name only."""
    import zlib

    raw = name.encode() + b"\0"
    raw += b"\0" * (-len(raw) % 4) + zlib.crc32(target.read_bytes()).to_bytes(4, "little")
    blob = lib.parent / "debuglink.bin"
    blob.write_bytes(raw)
    subprocess.run(["objcopy", "--remove-section=.gnu_debuglink",
                    f"--add-section=.gnu_debuglink={blob}", str(lib)], check=True)


def test_a_debuglink_is_followed_as_a_file_name_only(split, tmp_path):
    """Only where debuggers look: the library's folder, its .debug/, the debug root + the
    folder. A link with a folder in it (absolute, or with ..) names nothing."""
    lib, debug = split
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / debug.name
    debug.rename(moved)
    for name in (str(moved), f"elsewhere/{debug.name}",
                 f"../{tmp_path.name}/elsewhere/{debug.name}"):
        _set_debuglink(lib, name, moved)
        assert all(s.source is None for s in analyze(str(lib)).symbols), name
    # The same section, naming the file by its base name next to the library: followed.
    shutil.copy(moved, lib.parent / debug.name)
    _set_debuglink(lib, debug.name, moved)
    assert_sources(lib, POINTER_TABLES, C_TABLES)


def test_a_debuglink_never_makes_a_report_crc_a_huge_file(tmp_path):
    """Without a build-id the link is checked by CRC; a candidate of gigabytes is not read."""
    if shutil.which("objcopy") is None:
        pytest.skip("no objcopy")
    import time

    lib = build_library(tmp_path, "pt", POINTER_TABLES, flags=["-Wl,--build-id=none"])
    huge = tmp_path / "libpt.so.debug"
    with open(huge, "wb") as f:
        f.truncate(4 << 30)  # sparse: 4 GiB of zeros to read, none on disk
    _set_debuglink(lib, huge.name, lib)  # any CRC: the point is whether it is computed
    start = time.perf_counter()
    assert all(s.source is None for s in analyze(str(lib)).symbols)
    assert time.perf_counter() - start < 2  # CRC of 4 GiB: several seconds


@pytest.mark.parametrize("compiler,flags", [("cc", ["-g"]), ("clang", ["-g", "-gdwarf-5"])])
def test_every_table_of_a_large_unit_gets_its_line_in_linear_time(tmp_path, compiler, flags):
    """12,000 tables in one unit, each on its own line (the generated text is the oracle).
    clang's DWARF 5 locates them through .debug_addr indexes: searching the unit once per
    index was quadratic (6.5 s here); one pass is well under a second."""
    if shutil.which(compiler) is None:
        pytest.skip(f"no {compiler}")
    import time

    from relrocheck.dwarf import source_lines
    from relrocheck.measure import measure

    count = 12_000
    text = "".join(f'const char *table{i}[2] = {{"a{i}", "b"}};\n' for i in range(count))
    path = build_library(tmp_path, "many", text, compiler=compiler, flags=flags)
    lib = measure(str(path))
    start = time.perf_counter()
    lines = source_lines(lib, str(path))
    elapsed = time.perf_counter() - start
    by_name = {s.name: lines.get(s.address) for s in lib.symbols}
    for i in range(count):
        assert by_name[f"table{i}"].endswith(f".c:{i + 1}"), (i, by_name[f"table{i}"])
    assert elapsed < 3, elapsed


def test_finding_the_debug_file_costs_no_network_module_without_servers(split):
    """urllib is imported only to ask a server; the names once in dwarf.py still import."""
    lib, _debug = split
    probe = ("import os, sys; os.environ.pop('DEBUGINFOD_URLS', None); "
             "from relrocheck.analyze import analyze; "
             f"analyze({str(lib)!r}, debuginfod=True); "
             "from relrocheck.dwarf import debug_file_for, find_debug_file, check_debug_file; "
             "import relrocheck.debugfile as d; assert debug_file_for is d.debug_file_for; "
             "print('urllib.request' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


@pytest.mark.parametrize("target", ["s390x-linux-gnu", "powerpc64-linux-gnu", "i686-linux-gnu",
                                    "aarch64-linux-gnu"])
def test_source_lines_on_other_architectures(tmp_path, target):
    """Big-endian (s390x, ppc64) and 32-bit (i686) DWARF, built with clang for the target."""
    from libbuild import have_cross

    if not have_cross(target):
        pytest.skip(f"no toolchain for {target}")
    lib = build_library(tmp_path, "pt", POINTER_TABLES, target=target, flags=["-g", "-O2"])
    assert_sources(lib, POINTER_TABLES, C_TABLES)


def test_a_debug_file_with_a_build_id_note_without_bytes_is_an_error_not_a_crash(split):
    """A NOBITS .note.gnu.build-id (crafted: the section type patched, located by readelf)."""
    import re

    lib, debug = split
    out = subprocess.run(["readelf", "-SW", str(debug)], capture_output=True, text=True,
                         check=True).stdout
    (index,) = [int(m.group(1)) for m in re.finditer(r"\[\s*(\d+)\]\s+\.note\.gnu\.build-id", out)]
    header = subprocess.run(["readelf", "-hW", str(debug)], capture_output=True, text=True,
                            check=True).stdout
    start = int(re.search(r"Start of section headers:\s+(\d+)", header).group(1))
    size = int(re.search(r"Size of section headers:\s+(\d+)", header).group(1))
    with open(debug, "r+b") as f:
        f.seek(start + index * size + 4)  # sh_type
        f.write((8).to_bytes(4, "little"))  # SHT_NOBITS
    assert "NOBITS" in subprocess.run(["readelf", "-SW", str(debug)], capture_output=True,
                                      text=True, check=True).stdout.split("build-id")[1][:40]
    run = subprocess.run([sys.executable, "-m", "relrocheck", "report", str(lib),
                          "--debug-file", str(debug)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("relrocheck: error:") and "build-id" in run.stderr
    # Found through .gnu_debuglink instead: the candidate is not the debug file, no error.
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(lib)], check=True,
                   cwd=debug.parent)
    assert all(s.source is None for s in analyze(str(lib)).symbols)
