"""`relrocheck diff OLD NEW` and the diff rows behind `check`: two builds of a real library,
compared as ELF files, JSON reports or a baseline, give the same rows, checked against nm and
readelf, sorted by impact."""

from __future__ import annotations

import json
from pathlib import Path

import oracle
import pytest
from gatelibs import (
    ADDED_OPS,
    ADDED_TABLE,
    assert_one_error_line,
    build_gate_lib,
    nm_size,
    oracle_totals,
    run_cli,
)

from relrocheck import baseline
from relrocheck.analyze import analyze
from relrocheck.diff import diff_entries
from relrocheck.render.diff import md_code, md_escape, render_text, summary_line


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diff")
    return {
        "v1": build_gate_lib(root / "v1"),
        "grown": build_gate_lib(root / "grown", table=True, ops=True),
        "constify": build_gate_lib(root / "constify", constify=True),
        "other": build_gate_lib(root / "other", name="other"),
    }


def _diff(old: Path, new: Path):
    return diff_entries("libgate.so", baseline.entry_from_library(analyze(str(old))),
                        baseline.entry_from_library(analyze(str(new))))


def test_rows_agree_with_nm_and_readelf_and_are_sorted_by_impact(libs: dict[str, Path]) -> None:
    d = _diff(libs["v1"], libs["grown"])
    per_symbol = oracle.relocations_per_symbol(libs["grown"])
    rows = {c.name: c for c in d.symbols}
    for name in (ADDED_TABLE, ADDED_OPS):
        assert rows[name].status == "added"
        assert rows[name].new_bytes == nm_size(libs["grown"], name)
        assert rows[name].new_relocations == per_symbol[name]
        assert (rows[name].old_bytes, rows[name].old_relocations) == (0, 0)
    # Most added relocations first: the 8-entry table before the 2-pointer struct.
    names = [c.name for c in d.symbols]
    assert names.index(ADDED_TABLE) == 0 < names.index(ADDED_OPS)
    assert "colors" not in rows  # unchanged rows are left out
    assert d.count("added") == 2 and d.count("removed") == 0
    old, new = oracle_totals(libs["v1"]), oracle_totals(libs["grown"])
    for metric in ("relocations", "relocated_pages", "writable_bytes"):
        total = d.total(metric)
        assert (total.old, total.new) == (old[metric], new[metric])
    assert d.relocations_up - (-d.relocations_down) == new["relocations"] - old["relocations"]
    sections = {c.name: c for c in d.sections}
    readelf_old, readelf_new = oracle.sections(libs["v1"]), oracle.sections(libs["grown"])
    assert (sections[".data"].old_bytes, sections[".data"].new_bytes) == (
        readelf_old[".data"]["size"], readelf_new[".data"]["size"])


def test_shrinks_come_last_and_moves_keep_their_old_section(libs: dict[str, Path]) -> None:
    d = _diff(libs["v1"], libs["constify"])
    assert d.symbols[-1].name == "counters" and d.symbols[-1].status == "removed"
    assert d.symbols[-1].bytes_delta == -nm_size(libs["v1"], "counters")
    colors = next(c for c in d.symbols if c.name == "colors")
    assert colors.moved and (colors.old_section, colors.section) == (".data", ".data.rel.ro")
    assert d.shrank and not any(c.bytes_delta > 0 for c in d.symbols if c.name != "colors")


def test_text_has_a_bloat_o_meter_summary_line(libs: dict[str, Path]) -> None:
    d = _diff(libs["v1"], libs["grown"])
    line = summary_line(d)
    old, new = oracle_totals(libs["v1"]), oracle_totals(libs["grown"])
    assert line.startswith("add/remove: 2/0 grow/shrink: ")
    assert f"relocated pages: {old['relocated_pages']} -> {new['relocated_pages']}" in line
    text = render_text(d, top=1)
    assert text.splitlines()[0].strip() == line
    assert any(line.rstrip().endswith(ADDED_TABLE) for line in text.splitlines())
    assert f"... {len(d.symbols) - 1} more changed symbols" in text


def test_diff_command_gives_the_same_rows_for_elf_reports_and_baselines(
        tmp_path: Path, libs: dict[str, Path]) -> None:
    old_report, new_report = tmp_path / "old.json", tmp_path / "new.json"
    for lib, out in ((libs["v1"], old_report), (libs["grown"], new_report)):
        proc = run_cli("report", "--format", "json", "--top", "0", str(lib))
        assert proc.returncode == 0
        out.write_text(proc.stdout)
    base = tmp_path / "base.json"
    assert run_cli("--baseline", "update", str(libs["v1"]), str(libs["other"]),
                   "--baseline-file", str(base)).returncode == 0

    def diff_json(old: Path, new: Path) -> dict:
        proc = run_cli("diff", "--format", "json", str(old), str(new))
        assert proc.returncode == 0, proc.stderr  # diff judges nothing, even on growth
        (entry,) = [e for e in json.loads(proc.stdout)["libraries"] if e["diff"]]
        return entry["diff"]

    from_elf = diff_json(libs["v1"], libs["grown"])
    assert from_elf["symbols"][0]["name"] == ADDED_TABLE
    assert diff_json(base, libs["grown"]) == from_elf
    # A JSON report does not list GOT/PLT slots: the same rows, without slot changes.
    without_slots = {**from_elf, "got_slots": {"added": [], "removed": []}}
    assert diff_json(old_report, new_report) == without_slots

    # Several libraries on one side: paired by name; the unpaired one is named.
    proc = run_cli("diff", str(base), str(libs["grown"]))
    assert proc.returncode == 0
    assert "libother.so (only in OLD):" in proc.stdout
    assert "libgate.so:\n  add/remove: 2/0" in proc.stdout


def test_diff_markdown(libs: dict[str, Path]) -> None:
    proc = run_cli("diff", "--format", "markdown", str(libs["v1"]), str(libs["grown"]))
    assert proc.returncode == 0
    assert proc.stdout.startswith("### `libgate.so`\n\n**add/remove** 2/0 · **grow/shrink** ")
    assert f"| `{ADDED_TABLE}` | `.data` | 0 → 64 | +64 | 0 → 8 | +8 |" in proc.stdout


def test_markdown_keeps_symbol_names_literal() -> None:
    assert md_code("operator|") == "`operator\\|`"
    assert md_code("a`b") == "`` a`b ``"
    assert md_escape("_ZTV3Foo <int> *x* a|b") == "\\_ZTV3Foo &lt;int&gt; \\*x\\* a\\|b"


def test_truncated_report_is_refused(tmp_path: Path, libs: dict[str, Path]) -> None:
    top = tmp_path / "top.json"
    top.write_text(run_cli("report", "--format", "json", "--top", "2", str(libs["v1"])).stdout)
    proc = run_cli("diff", str(top), str(libs["grown"]))
    assert_one_error_line(proc, "lists only 2 of", "--top 0")


def test_unusable_inputs_are_one_error_line(tmp_path: Path, libs: dict[str, Path]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert_one_error_line(run_cli("diff", str(text), str(libs["v1"])),
                          "neither an ELF file nor a relrocheck JSON report or baseline")
    assert_one_error_line(run_cli("diff", str(tmp_path / "absent.so"), str(libs["v1"])),
                          "absent.so")
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert_one_error_line(run_cli("diff", str(other), str(libs["v1"])),
                          "neither a relrocheck report nor a baseline")
    bad_total = tmp_path / "bad_total.json"
    doc = json.loads(run_cli("report", "--format", "json", "--top", "0", str(libs["v1"])).stdout)
    doc["libraries"][0]["symbols_total"] = "many"
    bad_total.write_text(json.dumps(doc))
    assert_one_error_line(run_cli("diff", str(bad_total), str(libs["v1"])),
                          "not a valid relrocheck JSON report: libraries[0].symbols_total: 'many'")
    bad_baseline = tmp_path / "bad_baseline.json"
    bad_baseline.write_text('{"format_version": 1, "libraries": {}, "extra": 1}')
    assert_one_error_line(run_cli("diff", str(bad_baseline), str(libs["v1"])),
                          "corrupt baseline (baseline: unknown field extra)")
    report = tmp_path / "big.json"
    report.write_text(run_cli("report", "--format", "json", "--page-size", "16384",
                              str(libs["v1"])).stdout)
    assert_one_error_line(run_cli("diff", str(report), str(libs["grown"])),
                          "page size 16384", "do not compare")
