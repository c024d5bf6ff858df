"""`relrocheck scan`: which files a tree scan measures, how it ranks them, and what it prints.

The tree is built here from C source with the system compiler: shared libraries with known
pointer tables, a PIE executable, symlinks to files and folders (one a loop), a hard link,
non-ELF files, an object file, a static archive, a FIFO and two truncated copies of a real
library. Page counts are checked against `readelf -rW` offsets (tests/oracle.py).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import oracle
import pytest
from libbuild import build_library

from relrocheck import scan as scan_module
from relrocheck.analyze import analyze
from relrocheck.model import Hint
from relrocheck.record import replace
from relrocheck.scan import (
    classify_header,
    find_libraries,
    make_batches,
    scan,
    summarize,
)

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "relrocheck" / "schemas" / "scan.schema.json").read_text())

pytestmark = pytest.mark.skipif(shutil.which("cc") is None or shutil.which("readelf") is None,
                                reason="needs cc and readelf")


def _table_source(symbol: str, entries: int) -> str:
    # A pointer table: every entry is one R_X86_64_RELATIVE (or RELR) relocation, so the
    # table's size picks how many pages the library dirties.
    return f"""
static int values[4];
int *{symbol}[{entries}] = {{ [0 ... {entries - 1}] = &values[1] }};
int read_{symbol}(int i) {{ return *{symbol}[i]; }}
"""


# name -> pointer-table entries: distinct page counts, so the ranking order is fixed.
LIBRARIES = {"big": 3000, "foo": 1500, "mid": 700, "small": 1}
PIE_SOURCE = _table_source("app_table", 300) + "int main(void) { return read_app_table(0); }\n"


def _cc(*argv: str) -> None:
    subprocess.run(["cc", *argv], check=True, capture_output=True)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("scan")
    build, root, outside = base / "build", base / "root", base / "outside"
    for d in (build, root, root / "sub", outside):
        d.mkdir(parents=True)
    built = {name: build_library(build, name, _table_source(f"{name}_table", n))
             for name, n in LIBRARIES.items()}
    p = {
        "big": root / "libbig.so",
        "foo": root / "libfoo.so.1",
        "mid": root / "sub" / "libmid.so",
        "out": outside / "libout.so",
        "app": root / "app",
    }
    shutil.copy(built["big"], p["big"])
    shutil.copy(built["foo"], p["foo"])
    shutil.copy(built["mid"], p["mid"])
    shutil.copy(built["small"], p["out"])
    (build / "app.c").write_text(PIE_SOURCE)
    _cc("-O2", "-fPIE", "-pie", "-o", str(p["app"]), str(build / "app.c"))
    # Not ET_DYN: skipped silently.
    _cc("-O2", "-fno-PIE", "-no-pie", "-o", str(root / "app-nopie"), str(build / "app.c"))
    _cc("-O2", "-fPIC", "-c", "-o", str(root / "foo.o"), str(build / "foo.c"))
    subprocess.run(["ar", "rcs", str(root / "libstatic.a"), str(root / "foo.o")], check=True)
    # Not ELF at all.
    (root / "README.txt").write_text("not a library\n")
    (root / "empty.so").write_bytes(b"")
    (root / "magic-only.so").write_bytes(b"\x7fEL")
    (root / "script.so").write_text("#!/bin/sh\necho not ELF\n")
    os.mkfifo(root / "fifo.so")  # opening it would block the scan forever
    # Broken ELF: a real library cut in half (section headers gone), and one cut inside
    # the ELF header.
    data = p["big"].read_bytes()
    (root / "libcut.so").write_bytes(data[:len(data) // 2])
    (root / "libhead.so").write_bytes(data[:40])
    # The same real files again, under other names.
    os.link(p["big"], root / "zz-hardlink-of-big.so")
    os.symlink("libfoo.so.1", root / "libfoo.so")  # to a file, sorts before its target
    os.symlink("..", root / "sub" / "loop")  # to a folder: a loop
    os.symlink("../libbig.so", root / "sub" / "big-link.so")
    os.symlink(str(outside), root / "linkdir")  # to a folder outside the tree
    os.symlink("nowhere.so", root / "dangling.so")
    return {**p, "root": root, "outside": outside, "base": base}


def _oracle_pages(path: Path) -> int:
    return oracle.pages_with_relocations(path)


# -- finding files ---------------------------------------------------------------------------


def test_classify_header_decides_by_content():
    dyn64 = b"\x7fELF\x02\x01\x01" + bytes(9) + (3).to_bytes(2, "little") + bytes(46)
    assert classify_header(dyn64) is True
    assert classify_header(dyn64[:16] + (1).to_bytes(2, "little") + dyn64[18:]) is False  # REL
    dyn32_be = b"\x7fELF\x01\x02\x01" + bytes(9) + (3).to_bytes(2, "big") + bytes(34)
    assert classify_header(dyn32_be) is True
    assert classify_header(b"!<arch>\n" + bytes(56)) is False
    assert classify_header(b"#!/bin/sh\n") is False
    assert "incomplete" in str(classify_header(dyn64[:40]))
    assert "class" in str(classify_header(b"\x7fELF\x07\x01" + bytes(58)))


def test_finds_each_shared_object_once_without_following_symlinks(tree):
    found = find_libraries([str(tree["root"])])
    paths = sorted(c.path for c in found.candidates)
    # libcut.so has an intact ELF header: it is found, and fails when measured.
    assert paths == sorted([*(str(tree[k]) for k in ("app", "big", "foo", "mid")),
                            str(tree["root"] / "libcut.so")])
    (error,) = found.errors
    assert error.path == str(tree["root"] / "libhead.so")
    assert error.message == "truncated ELF file: the ELF header is incomplete (40 bytes)"


def test_follow_symlinks_reaches_linked_folders_once_and_prefers_direct_paths(tree):
    found = find_libraries([str(tree["root"])], follow_symlinks=True)
    paths = sorted(c.path for c in found.candidates)
    # libout.so is reachable only through linkdir; libfoo.so (a symlink, met first) and
    # sub/big-link.so name files that are also reached directly, so the direct paths win;
    # sub/loop leads back to root, which is not walked again.
    assert paths == sorted([str(tree["app"]), str(tree["big"]), str(tree["foo"]),
                            str(tree["mid"]), str(tree["root"] / "linkdir" / "libout.so"),
                            str(tree["root"] / "libcut.so")])
    # Listing the outside folder itself afterwards gives its files their direct path.
    found = find_libraries([str(tree["root"]), str(tree["outside"])], follow_symlinks=True)
    assert str(tree["out"]) in {c.path for c in found.candidates}
    assert len(found.candidates) == 6


def test_overlapping_roots_and_file_roots_count_each_file_once(tree):
    found = find_libraries([str(tree["root"]), str(tree["root"] / "sub"), str(tree["big"]),
                            str(tree["root"] / "libfoo.so")])
    assert sorted(c.path for c in found.candidates) == sorted(
        [*(str(tree[k]) for k in ("app", "big", "foo", "mid")), str(tree["root"] / "libcut.so")])


def test_missing_root_is_a_usage_error(tree):
    from relrocheck.errors import UsageError

    with pytest.raises(UsageError, match="no such file"):
        find_libraries([str(tree["root"] / "no-such-folder")])


def test_bad_roots_are_usage_errors_before_any_walk(tree, tmp_path):
    from relrocheck.errors import UsageError

    # A path through a file is not "missing": say what it is, and check every root first
    # (the good root before it is not walked).
    through_file = str(tree["big"]) + "/sub"
    with pytest.raises(UsageError, match="cannot read: Not a directory"):
        find_libraries([str(tree["root"]), through_file])
    fifo = str(tree["root"] / "fifo.so")
    with pytest.raises(UsageError, match="neither a folder nor a regular file"):
        find_libraries([str(tree["root"]), fifo])
    proc = _run(str(tree["root"]), through_file)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"relrocheck: error: {through_file}: cannot read: Not a directory\n"


# -- measuring and ranking -------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_ranks_by_relocated_pages_matching_readelf(tree, jobs):
    if jobs > 1:
        # Else the pool would not even be started and jobs=2 would prove nothing.
        assert len(make_batches(find_libraries([str(tree["root"])]).candidates, jobs)) > 1
    result = scan([str(tree["root"])], jobs=jobs)
    ranked = [lib.path for lib in result.libraries]
    assert ranked == [str(tree[k]) for k in ("big", "foo", "mid", "app")]
    for lib in result.libraries:
        assert lib.relocated_pages == _oracle_pages(Path(lib.path)), lib.path
        assert lib.relocations == oracle.relocation_total(lib.path), lib.path
        assert lib.load_dirty_pages >= lib.relocated_pages
        assert lib.dirty_bytes == lib.load_dirty_pages * 4096
    pages = [lib.relocated_pages for lib in result.libraries]
    assert pages == sorted(pages, reverse=True) and len(set(pages)) == len(pages)
    assert [lib.pie for lib in result.libraries] == [False, False, False, True]
    # The broken files are listed, the scan went on.
    assert [e.path for e in result.errors] == [str(tree["root"] / "libcut.so"),
                                               str(tree["root"] / "libhead.so")]
    assert all("truncated" in e.message for e in result.errors)
    t = result.totals
    assert t.libraries == 4
    assert t.relocated_pages == sum(_oracle_pages(tree[k]) for k in ("big", "foo", "mid", "app"))
    assert t.relocations == sum(oracle.relocation_total(tree[k])
                                for k in ("big", "foo", "mid", "app"))


def test_jobs_do_not_change_the_result(tree):
    one = scan([str(tree["root"])], jobs=1, follow_symlinks=True)
    two = scan([str(tree["root"])], jobs=2, follow_symlinks=True)
    assert one.libraries == two.libraries and one.errors == two.errors
    assert len(one.libraries) == 5


def test_top_symbols_are_the_tables_with_readelf_counts(tree):
    result = scan([str(tree["big"])], symbols=2)
    (lib,) = result.libraries
    top = lib.symbols[0]
    assert top.name == "big_table"
    assert top.relocations == oracle.relocations_per_symbol(tree["big"])["big_table"] == 3000
    sym = next(s for s in oracle.symbols(tree["big"]) if s["name"] == "big_table")
    inside = [o for o in oracle.relocation_offsets(tree["big"])
              if sym["address"] <= o < sym["address"] + sym["size"]]
    assert top.pages == len({o // 4096 for o in inside})
    assert len(lib.symbols) <= 2
    assert scan([str(tree["big"])], symbols=0).libraries[0].symbols == ()


def test_summary_carries_hint_kinds(tree):
    lib = analyze(str(tree["big"]))
    # Whatever hints.py says of the others, give the top symbol a kind of our own to follow.
    first = replace(lib.symbols[0], hint=Hint("test-kind", "advice"))
    lib = replace(lib, symbols=(first, *lib.symbols[1:]))
    summary = summarize(lib, symbols=2)
    assert [s.hint for s in summary.symbols] == [
        s.hint.kind if s.hint else None for s in lib.symbols if s.relocations][:2]
    assert summary.symbols[0].hint == "test-kind"
    expected: dict[str, int] = {}
    for s in lib.symbols:
        if s.hint is not None:
            expected[s.hint.kind] = expected.get(s.hint.kind, 0) + s.relocations
    assert summary.hint_relocations == {k: v for k, v in expected.items() if v}
    assert summary.hint_relocations["test-kind"] == 3000


def test_page_size_is_passed_to_the_workers(tree):
    result = scan([str(tree["big"])], jobs=2, page_size=65536)
    assert result.libraries[0].relocated_pages == oracle.pages_with_relocations(
        tree["big"], page_size=65536)
    assert result.libraries[0].page_size == 65536


def _die_in_worker(paths, page_size, symbols):
    os._exit(3)  # a worker killed mid-batch (the OOM killer, a crash)


def test_a_dying_worker_is_reported_not_hung(tree, monkeypatch):
    monkeypatch.setattr(scan_module, "_measure_batch", _die_in_worker)
    signal.alarm(60)
    try:
        result = scan([str(tree["root"])], jobs=2)
    finally:
        signal.alarm(0)
    assert result.libraries == ()
    died = [e for e in result.errors if "worker process died" in e.message]
    assert sorted(e.path for e in died) == sorted(
        [*(str(tree[k]) for k in ("app", "big", "foo", "mid")), str(tree["root"] / "libcut.so")])


# -- the command -----------------------------------------------------------------------------


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "relrocheck", "scan", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False, **kwargs)


def test_json_output_follows_the_schema(tree):
    proc = _run("--format", "json", "--jobs", "2", str(tree["root"]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # not a terminal: no progress
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert [lib["path"] for lib in doc["libraries"]] == [
        str(tree[k]) for k in ("big", "foo", "mid", "app")]
    assert [lib["rank"] for lib in doc["libraries"]] == [1, 2, 3, 4]
    big = doc["libraries"][0]
    assert big["name"] == "libbig.so" and big["pie"] is False
    assert big["relocated_pages"] == _oracle_pages(tree["big"])
    assert big["dirty_kib"] == big["load_dirty_pages"] * 4
    assert big["symbols"][0]["name"] == "big_table"
    assert doc["totals"]["libraries"] == 4 and doc["totals"]["errors"] == 2
    assert doc["libraries_omitted"] == 0
    assert [e["path"] for e in doc["errors"]] == [str(tree["root"] / "libcut.so"),
                                                  str(tree["root"] / "libhead.so")]
    assert doc["scan"]["follow_symlinks"] is False and doc["scan"]["jobs"] == 2


def test_dirty_kib_is_pages_times_page_size_below_one_kib_pages(tree):
    # 512-byte pages: two dirty pages are 1 KiB, one is 0.50 KiB, not "0 KiB".
    relocated = oracle.pages_with_relocations(tree["foo"], page_size=512)
    doc = json.loads(_run("--format", "json", "--page-size", "512", str(tree["foo"])).stdout)
    (lib,) = doc["libraries"]
    assert lib["relocated_pages"] == relocated
    assert lib["dirty_kib"] == lib["load_dirty_pages"] / 2
    text = _run("--page-size", "512", str(tree["foo"])).stdout
    row = next(line for line in text.splitlines() if str(tree["foo"]) in line.split())
    half = lib["load_dirty_pages"] / 2
    assert row.split()[3] == (f"{half:.0f}" if half == int(half) else f"{half:.2f}")
    report = subprocess.run([sys.executable, "-m", "relrocheck", "report", "--page-size", "512",
                             str(tree["foo"])], capture_output=True, text=True, check=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO))).stdout
    line = next(s for s in report.splitlines() if "Pages written at load" in s)
    assert line.split()[4] == str(relocated)
    assert line.split("= ")[1].split()[0] == row.split()[3]


def test_top_limits_the_list_but_not_the_totals(tree):
    doc = json.loads(_run("--format", "json", "--top", "2", str(tree["root"])).stdout)
    assert [lib["rank"] for lib in doc["libraries"]] == [1, 2]
    assert doc["libraries_omitted"] == 2 and doc["totals"]["libraries"] == 4
    text = _run("--top", "1", "--symbols", "1", str(tree["root"])).stdout
    assert str(tree["big"]) in text and str(tree["foo"]) not in text
    assert "3 more" in text and "big_table" in text
    assert "Totals over 4 shared objects" in text


def test_text_lists_errors_at_the_end(tree):
    proc = _run(str(tree["root"]))
    assert proc.returncode == 0 and proc.stderr == ""
    errors_at = proc.stdout.index("Errors: 2 files could not be measured")
    assert proc.stdout.index("Totals") < errors_at
    assert proc.stdout.index(str(tree["root"] / "libhead.so")) > errors_at


def test_markdown_is_a_table_with_one_row_per_library(tree):
    proc = _run("--format", "markdown", "--top", "3", str(tree["root"]))
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| # | library |"))
    end = lines.index("", start)
    rows = [lines[start], *lines[start + 2:end]]  # header, then rows after the |--:| line
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["1", "2", "3"]
    assert "`libbig.so`" in rows[1] and "`big_table`" in rows[1]
    assert "### Errors (2)" in proc.stdout


def test_exit_codes(tree, tmp_path):
    missing = _run(str(tmp_path / "missing"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == (f"relrocheck: error: {tmp_path / 'missing'}: "
                                      "no such file or directory")
    (tmp_path / "only-broken").mkdir()
    shutil.copy(tree["root"] / "libcut.so", tmp_path / "only-broken")
    broken = _run(str(tmp_path / "only-broken"))
    assert broken.returncode == 2 and "libcut.so" in broken.stdout
    (tmp_path / "empty").mkdir()
    empty = _run(str(tmp_path / "empty"))
    assert empty.returncode == 0 and "No ELF shared objects found" in empty.stdout
    assert _run("--jobs", "0", str(tmp_path)).returncode == 2


def test_command_defaults_are_the_library_defaults():
    # commands/scan.py repeats them so that building the parser (every command does) does
    # not import relrocheck.scan: they must not drift apart.
    from relrocheck.cli import build_parser
    from relrocheck.render.scan import DEFAULT_TOP

    parser = build_parser()
    args = parser.parse_args(["scan", "somewhere"])
    assert args.symbols == scan_module.DEFAULT_SYMBOLS
    assert args.page_size == scan_module.DEFAULT_PAGE_SIZE
    help_text = " ".join(_run("--help").stdout.split())
    assert f"text and Markdown default {DEFAULT_TOP}" in help_text
    assert f"(default {scan_module.DEFAULT_SYMBOLS}; 0 = all, as for --top)" in help_text


def test_progress_only_on_a_terminal(tree):
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "relrocheck", "scan", "--jobs", "1",
                             "--format", "json", str(tree["root"])],
                            env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    assert b"[5/5] " in seen  # the last update is always drawn
    assert seen.endswith(b"\r\x1b[K")  # and wiped before the report is printed
    assert json.loads(out)["totals"]["libraries"] == 4


@pytest.mark.skipif(shutil.which("c++") is None or shutil.which("c++filt") is None,
                    reason="needs c++ and c++filt")
def test_kept_symbols_are_demangled(tmp_path):
    from libbuild import fixture

    lib = build_library(tmp_path / "build", "vtables", fixture("cxx_vtables.cpp"), lang="c++")
    result = scan([str(lib)], symbols=50)
    symbols = {s.name: s for s in result.libraries[0].symbols}
    vtables = [name for name in symbols if name.startswith("_ZTVN7fixture")]
    assert vtables, list(symbols)
    for name in vtables:
        expected = subprocess.run(["c++filt", name], capture_output=True, text=True,
                                  check=True).stdout.strip()
        assert expected.startswith("vtable for fixture::")
        assert symbols[name].demangled == expected
        assert symbols[name].label == expected
    assert all(s.demangled is None for s in symbols.values() if not s.name.startswith("_Z"))


def test_hint_kinds_are_totalled_and_explained(tree):
    from relrocheck.hints import HINT_KINDS

    doc = json.loads(_run("--format", "json", str(tree["root"])).stdout)
    by_kind: dict[str, int] = {}
    for lib in doc["libraries"]:
        for kind, n in lib["hint_relocations"].items():
            by_kind[kind] = by_kind.get(kind, 0) + n
    assert doc["totals"]["hint_relocations"] == by_kind
    assert by_kind, "the pointer tables of the tree get no hint at all"
    text = _run(str(tree["root"])).stdout
    legend = text[text.index("Relocations by hint kind"):].split("\n\n")[0]
    entries = {}  # kind -> its lines joined (long explanations wrap onto indented lines)
    for line in legend.splitlines()[1:]:
        words = line.split()
        if line[2] != " ":
            kind = words[0]
            entries[kind] = words[1:]
        else:
            entries[kind] += words
    assert set(entries) == set(by_kind)
    for kind, n in by_kind.items():
        assert entries[kind][0] == str(n)
        assert " ".join(entries[kind][1:]) == HINT_KINDS[kind].split(". ")[0].rstrip(".")
