"""The baseline file: numbers checked against readelf/nm, a deterministic text form, strict
reading (corrupt, truncated, future version: a clear error and the file untouched), atomic
replacement and a file lock that lets concurrent updates of one file all survive."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import oracle
import pytest
from gatelibs import (
    ADDED_TABLE,
    ADDED_TABLE_ENTRIES,
    PACKAGE_ROOT,
    assert_one_error_line,
    build_gate_lib,
    oracle_totals,
    run_cli,
)

from relrocheck import baseline
from relrocheck.analyze import analyze
from relrocheck.errors import BaselineError
from relrocheck.record import replace


@pytest.fixture(scope="module")
def table_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gate_lib(tmp_path_factory.mktemp("table"), table=True)


def test_entry_numbers_agree_with_readelf_and_nm(table_lib: Path) -> None:
    entry = baseline.entry_from_library(analyze(str(table_lib)))
    expected = oracle_totals(table_lib)
    for metric, value in expected.items():
        assert entry.totals[metric] == value, metric
    readelf = oracle.sections(table_lib)
    for name, section in entry.sections.items():
        assert section.bytes == readelf[name]["size"], name
    assert entry.sections[".data"].relocations == oracle.relocations_per_section(table_lib)[".data"]
    per_symbol = oracle.relocations_per_symbol(table_lib)
    sizes = {s["name"]: s["size"] for s in oracle.symbols(table_lib)}
    for name in (ADDED_TABLE, "colors", "counters"):
        assert entry.symbols[name].bytes == sizes[name]
        assert entry.symbols[name].relocations == per_symbol.get(name, 0)
    assert entry.symbols[ADDED_TABLE].relocations == ADDED_TABLE_ENTRIES
    assert entry.symbols[ADDED_TABLE].section == ".data"
    # The remainder of a section is kept under its bucket name.
    assert any(name.startswith("<unattributed in ") for name in entry.symbols)


def test_same_source_gives_a_byte_identical_baseline(tmp_path: Path) -> None:
    first = build_gate_lib(tmp_path / "one", table=True)
    second = build_gate_lib(tmp_path / "elsewhere" / "two", table=True)
    for lib, out in ((first, "a.json"), (second, "b.json")):
        proc = run_cli("--baseline", "update", str(lib), "--baseline-file", out, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "a.json").read_bytes()
    assert text == (tmp_path / "b.json").read_bytes()
    assert text.endswith(b"}\n") and b"\r" not in text
    # Nothing that changes when the numbers do not: paths, addresses, versions, times.
    assert str(tmp_path).encode() not in text and b"address" not in text
    assert b"build_id" not in text and b"version\"" not in text.replace(b"format_version", b"")
    document = json.loads(text)
    assert document["format_version"] == baseline.FORMAT_VERSION
    assert list(document["libraries"]) == ["libgate.so"]
    # Keys are sorted at every level, so a review diff shows only real changes.
    def sorted_everywhere(value: object) -> bool:
        if isinstance(value, dict):
            return list(value) == sorted(value) and all(map(sorted_everywhere, value.values()))
        return True
    assert sorted_everywhere(document)
    # One line per symbol: a new table is one added line in review.
    assert sum(ADDED_TABLE in line and '"relocations"' in line
               for line in text.decode().splitlines()) == 1
    # And its GOT slot (code takes the exported table's address) is one line too.
    assert sum(ADDED_TABLE in line and '"own_export"' in line
               for line in text.decode().splitlines()) == 1


def test_text_form_round_trips(table_lib: Path) -> None:
    entries = {"libgate.so": baseline.entry_from_library(analyze(str(table_lib)))}
    text = baseline.dumps(entries)
    assert baseline.parse(text, "b.json") == entries
    assert baseline.dumps(baseline.parse(text, "b.json")) == text
    assert baseline.parse(baseline.dumps({}), "empty.json") == {}


def test_slots_left_unnamed_are_unknown_not_none(table_lib: Path) -> None:
    """A report does not name GOT/PLT slots (got_slots=False): an entry made from such a
    library records no slot list, which a diff reads as unknown, rather than an empty one."""
    named = analyze(str(table_lib))
    entry = baseline.entry_from_library(named)
    assert entry.got_slots and ADDED_TABLE in entry.got_slots
    unnamed = analyze(str(table_lib), got_slots=False)
    assert unnamed.got_slots is None
    assert baseline.entry_from_library(unnamed).got_slots is None
    assert replace(unnamed, got_slots=named.got_slots) == named  # nothing else differs
    assert '"got_slots"' not in baseline.dumps({"libgate.so": baseline.entry_from_library(
        unnamed)})


def _valid_text(lib: Path) -> str:
    return baseline.dumps({"libgate.so": baseline.entry_from_library(analyze(str(lib)))})


CORRUPT = {
    "truncated": lambda good: good[: len(good) // 2],
    "empty": lambda good: "",
    "garbage": lambda good: "\x00\x01binary garbage",
    "not_utf8": lambda good: good.replace("x86_64", "x86\udcff64"),
    "future_version": lambda good: good.replace('"format_version": 1', '"format_version": 2'),
    "version_as_string": lambda good: good.replace('"format_version": 1', '"format_version": "1"'),
    "no_version": lambda good: good.replace('"format_version": 1,', ""),
    "top_level_list": lambda good: "[]\n",
    "wrong_type": lambda good: good.replace('"relocated_pages": ', '"relocated_pages": "x", "y": '),
    "negative_count": lambda good: good.replace('"relocations": 8,', '"relocations": -8,', 1),
    "unknown_field": lambda good: good.replace('"machine":', '"colour": 1, "machine":'),
    "missing_totals": lambda good: good.replace('"totals":', '"totalz":'),
    "huge_number": lambda good: good.replace('"relocations": 8,', f'"relocations": {"9" * 5000},',
                                             1),
    "libraries_as_a_list": lambda good: '{"format_version": 1, "libraries": []}\n',
}

CORRUPT_MESSAGES = {
    "truncated": "truncated baseline (invalid JSON at line",
    "empty": "empty baseline file; restore it from version control",
    "garbage": "corrupt baseline (invalid JSON",
    "not_utf8": "corrupt baseline (not UTF-8 text)",
    "future_version": "baseline format version 2 is newer than this relrocheck understands (1)",
    "version_as_string": "corrupt baseline (format_version '1')",
    "no_version": "not a relrocheck baseline (no format_version)",
    "top_level_list": "not a relrocheck baseline",
    "wrong_type": "corrupt baseline (libraries['libgate.so']",
    "negative_count": "expected a count (integer >= 0)",
    "unknown_field": "unknown field colour",
    "missing_totals": "missing totals",
    "huge_number": "corrupt baseline (a number too long to read)",
    "libraries_as_a_list": "corrupt baseline (libraries: expected an object)",
}


def _write_corrupt(path: Path, case: str, good: str) -> bytes:
    text = CORRUPT[case](good)
    assert text != good
    data = text.encode("utf-8", "surrogateescape")
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_bad_baseline_is_a_clear_error_and_left_untouched(tmp_path: Path, table_lib: Path,
                                                          case: str) -> None:
    path = tmp_path / "relro-baseline.json"
    before = _write_corrupt(path, case, _valid_text(table_lib))
    with pytest.raises(BaselineError) as info:
        baseline.read(str(path))
    assert CORRUPT_MESSAGES[case] in str(info.value)
    assert str(info.value).startswith(f"{path}: ")

    for mode in ("check", "update"):
        proc = run_cli("--baseline", mode, str(table_lib), "--baseline-file", str(path),
                       "--stamp", str(tmp_path / "ok.stamp"))
        assert_one_error_line(proc, str(path), CORRUPT_MESSAGES[case])
        assert path.read_bytes() == before, f"{mode} changed a bad baseline"
        assert not (tmp_path / "ok.stamp").exists()
    leftovers = {p.name for p in tmp_path.iterdir()} - {path.name}
    assert not leftovers, leftovers


def test_update_keeps_other_entries_and_skips_writing_when_nothing_changed(
        tmp_path: Path, table_lib: Path) -> None:
    path = tmp_path / "relro-baseline.json"
    other = build_gate_lib(tmp_path / "other", name="other")
    assert run_cli("--baseline", "update", str(other), "--baseline-file", str(path)).returncode == 0
    other_entry = baseline.read(str(path))["libother.so"]  # type: ignore[index]
    assert run_cli("--baseline", "update", str(table_lib), "--baseline-file",
                   str(path)).returncode == 0
    stored = baseline.read(str(path))
    assert stored is not None and set(stored) == {"libother.so", "libgate.so"}
    assert stored["libother.so"] == other_entry

    os.chmod(path, 0o640)
    before = path.stat()
    time.sleep(0.01)
    proc = run_cli("--baseline", "update", str(table_lib), "--baseline-file", str(path))
    assert proc.returncode == 0 and "(unchanged)" in proc.stdout
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # A real change replaces the file (new inode: written beside it, renamed over it) and
    # keeps its permissions.
    changed = build_gate_lib(tmp_path / "v2", table=True, ops=True)
    assert run_cli("--baseline", "update", str(changed), "--baseline-file",
                   str(path)).returncode == 0
    assert path.stat().st_ino != before.st_ino
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    # Nothing but the baseline is left in the folder: no lock or temporary file.
    assert {p.name for p in tmp_path.iterdir()} == {"relro-baseline.json", "other", "v2"}


def test_update_through_a_symlink_keeps_the_link(tmp_path: Path, table_lib: Path) -> None:
    real = tmp_path / "real" / "base.json"
    real.parent.mkdir()
    real.write_text(baseline.dumps({}))
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert run_cli("--baseline", "update", str(table_lib), "--baseline-file",
                   str(link)).returncode == 0
    assert link.is_symlink()
    assert set(baseline.read(str(real)) or {}) == {"libgate.so"}


def test_update_creates_missing_folders(tmp_path: Path, table_lib: Path) -> None:
    path = tmp_path / "new" / "dir" / "base.json"
    assert run_cli("--baseline", "update", str(table_lib), "--baseline-file",
                   str(path)).returncode == 0
    assert set(baseline.read(str(path)) or {}) == {"libgate.so"}


def test_update_into_a_read_only_folder_is_one_error_line(tmp_path: Path,
                                                          table_lib: Path) -> None:
    if os.geteuid() == 0:
        # Root writes into read-only folders: run the update as an unprivileged user, in a
        # forked child (the interpreter itself may live where that user cannot read).
        from unprivileged import cli_as_nobody, shared_folder

        with shared_folder() as shared:
            lib = shared / table_lib.name
            lib.write_bytes(table_lib.read_bytes())
            lib.chmod(0o644)
            folder = shared / "ro"
            folder.mkdir()
            folder.chmod(0o555)
            warm_up = ["--baseline", "update", str(lib), "--baseline-file",
                       str(tmp_path / "warm.json")]
            proc = cli_as_nobody(["--baseline", "update", str(lib), "--baseline-file",
                                  str(folder / "b.json")], warm_up, tmp_path)
            assert_one_error_line(proc, "cannot write baseline: Permission denied")
            assert list(folder.iterdir()) == []
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        proc = run_cli("--baseline", "update", str(table_lib), "--baseline-file",
                       str(folder / "b.json"))
    finally:
        folder.chmod(0o755)
    assert_one_error_line(proc, "cannot write baseline: Permission denied")
    assert list(folder.iterdir()) == []


def test_update_waits_for_the_lock(tmp_path: Path, table_lib: Path) -> None:
    path = tmp_path / "relro-baseline.json"
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
    with baseline.locked(str(path)):
        proc = subprocess.Popen([sys.executable, "-m", "relrocheck", "--baseline", "update",
                                 str(table_lib), "--baseline-file", str(path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.5)
        assert proc.poll() is None, "the update did not wait for the lock"
        assert not path.exists()
    assert proc.wait(timeout=60) == 0
    assert set(baseline.read(str(path)) or {}) == {"libgate.so"}


def test_eight_concurrent_updates_of_different_libraries_all_survive(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        libs = list(pool.map(lambda i: build_gate_lib(tmp_path / f"b{i}", name=f"conc{i}"),
                             range(8)))
    path = tmp_path / "relro-baseline.json"
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
    procs = [subprocess.Popen([sys.executable, "-m", "relrocheck", "--baseline", "update",
                               str(lib), "--baseline-file", str(path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for lib in libs]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert err == ""
    stored = baseline.read(str(path))
    assert stored is not None and sorted(stored) == sorted(f"libconc{i}.so" for i in range(8))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _hammer(path: str, worker: int, rounds: int, template: baseline.Entry) -> None:
    for r in range(rounds):
        baseline.update(path, {f"lib{worker}-{r}.so": template})


def test_lock_survives_many_racing_read_modify_writes(tmp_path: Path, table_lib: Path) -> None:
    """8 processes x 25 updates: without the lock, racing read-modify-writes lose entries."""
    template = baseline.entry_from_library(analyze(str(table_lib)))
    path = str(tmp_path / "relro-baseline.json")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_hammer, args=(path, w, 25, template)) for w in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    stored = baseline.read(path)
    assert stored is not None and len(stored) == 8 * 25


def test_missing_baseline_reads_as_none(tmp_path: Path) -> None:
    assert baseline.read(str(tmp_path / "absent.json")) is None


def test_unreadable_baseline_is_an_error(tmp_path: Path, table_lib: Path) -> None:
    proc = run_cli("check", str(table_lib), "--baseline-file", str(tmp_path))
    assert_one_error_line(proc, "cannot read baseline")
