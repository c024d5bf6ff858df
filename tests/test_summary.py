"""`relrocheck summary`: many libraries, each with its own policy and baseline, one Markdown and
one JSON file. Numbers are checked against readelf; bad input gives one error line, exit 2, and
still both files."""

from __future__ import annotations

import json
from pathlib import Path

import oracle
from gatelibs import ADDED_TABLE, assert_one_error_line, build_gate_lib, run_cli


def test_each_library_is_judged_against_its_own_baseline(tmp_path: Path) -> None:
    a = build_gate_lib(tmp_path / "a")
    b = build_gate_lib(tmp_path / "b", name="other")
    policy = tmp_path / "relro.yaml"
    policy.write_text("regression: {new_symbols: fail}\n")
    assert run_cli("--baseline", "update", str(a), "--policy", str(policy)).returncode == 0
    assert run_cli("--baseline", "update", str(b),
                   "--baseline-file", str(tmp_path / "b.json")).returncode == 0
    proc = run_cli("summary", "--check", str(a), str(policy), "-",
                   "--check", str(b), "", str(tmp_path / "b.json"),
                   "--markdown", str(tmp_path / "out" / "s.md"),
                   "--json", str(tmp_path / "out" / "s.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "s.json").read_text())
    assert doc["status"] == "ok" and doc["counts"] == {"ok": 2, "fail": 0, "error": 0}
    for lib, path in zip(doc["libraries"], (a, b)):
        assert lib["totals"]["relocations"] == oracle.relocation_total(path)
        assert lib["totals"]["relocated_pages"] == oracle.pages_with_relocations(path)
    assert doc["libraries"][1]["baseline_file"] == str(tmp_path / "b.json")
    assert "2 libraries: 2 ok" in (tmp_path / "out" / "s.md").read_text()


def test_a_grown_library_fails_and_is_named(tmp_path: Path) -> None:
    lib = build_gate_lib(tmp_path / "v1")
    baseline = tmp_path / "relro-baseline.json"
    assert run_cli("--baseline", "update", str(lib), "--baseline-file", str(baseline)
                   ).returncode == 0
    grown = build_gate_lib(tmp_path / "v2", table=True)
    proc = run_cli("summary", str(grown), "--baseline-file", str(baseline),
                   "--markdown", str(tmp_path / "s.md"), "--json", str(tmp_path / "s.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "s.json").read_text())
    (entry,) = doc["libraries"]
    assert entry["status"] == "fail"
    assert any(v["symbol"] == ADDED_TABLE for v in entry["violations"]), entry["violations"]
    assert ADDED_TABLE in (tmp_path / "s.md").read_text()


def test_an_unreadable_library_is_one_error_and_still_listed(tmp_path: Path) -> None:
    bogus = tmp_path / "libbogus.so"
    bogus.write_bytes(b"not an ELF file")
    proc = run_cli("summary", str(bogus), "--json", str(tmp_path / "s.json"))
    assert_one_error_line(proc, str(bogus))
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["status"] == "error" and doc["libraries"][0]["status"] == "error"


def test_summary_needs_an_output(tmp_path: Path) -> None:
    proc = run_cli("summary", str(tmp_path / "x.so"))
    assert_one_error_line(proc, "--markdown")
