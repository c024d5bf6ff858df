"""Less to read: look-alike symbols as one row, and --group-by file|directory|hint.

The library has 30 generated event descriptors (tests/fixtures/events.eo.c, Eolian style);
counts, sizes and source files come from nm (nm -l reads the DWARF line table) and readelf.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import oracle
import pytest
from libbuild import build_library, fixture

from relrocheck.analyze import analyze
from relrocheck.group import group_by

PATTERN = re.compile(r"^_EFL_UI_\w+_EVENT_CHANGED$")


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("group"), "events", fixture("events.eo.c"),
                         flags=["-g"])


def _run(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "relrocheck", *args], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _descriptors(path: Path) -> list[oracle.SymbolInfo]:
    return [s for s in oracle.symbols(path) if PATTERN.match(s["name"])]


def test_thirty_generated_descriptors_are_one_row(events):
    found = _descriptors(events)
    sizes = {s["size"] for s in found}
    assert len(found) == 30 and len(sizes) == 1
    per_symbol = oracle.relocations_per_symbol(events)
    each = {per_symbol[s["name"]] for s in found}
    assert each == {1}
    text = _run("report", str(events))
    row = f"30 x `_EFL_UI_*_EVENT_CHANGED`: {sizes.pop()} B, 1 string pointer each"
    assert row in text, text
    assert not re.search(r"^\s+\d+.*_EFL_UI_A_EVENT_CHANGED", text, re.M)  # folded away
    # The one hint of the row says where the fix goes: the generator.
    hint = " ".join(text[text.index(row):].split("\n")[1:8])
    assert "hint (string_pointer_table)" in hint and "generator" in hint


def _nm_sources(path: Path) -> dict[str, str]:
    """Symbol -> source file, from `nm -l` (DWARF line info, read by binutils)."""
    out = subprocess.run(["nm", "-l", "--defined-only", str(path)], capture_output=True,
                         text=True, check=True).stdout
    sources = {}
    for line in out.splitlines():
        parts = line.split("\t")
        fields = parts[0].split()
        if len(parts) == 2 and len(fields) == 3:
            sources[fields[2]] = parts[1].rsplit(":", 1)[0]
    return sources


def test_group_by_file_adds_up_a_source_file(events):
    sources = _nm_sources(events)
    found = _descriptors(events)
    files = {sources[s["name"]] for s in found}
    assert len(files) == 1
    source_file = files.pop()
    assert source_file.endswith("events.eo.c")
    doc = json.loads(_run("report", "--format", "json", "--group-by", "file", str(events)))
    lib = doc["libraries"][0]
    assert lib["group_by"] == "file"
    group = next(g for g in lib["groups"] if g["label"].endswith("events.eo.c"))
    per_symbol = oracle.relocations_per_symbol(events)
    in_file = [s for s in oracle.symbols(events) if sources.get(s["name"]) == source_file
               and per_symbol.get(s["name"])]
    assert group["count"] == len(in_file) == 30
    assert group["relocations"] == sum(per_symbol[s["name"]] for s in in_file)
    assert group["size"] == sum(s["size"] for s in in_file)
    # Pages of the group, and those only its members relocate, from readelf + nm.
    owners = oracle.owner_pages(events)
    members = {s["name"] for s in in_file}
    touched = set().union(*(owners[m] for m in members))
    others = set().union(*(p for o, p in owners.items() if o not in members))
    assert group["pages"] == len(touched)
    assert group["pages_exclusive"] == len(touched - others)
    text = _run("report", "--group-by", "file", str(events))
    assert "Symbols in writable data by file" in text and source_file in text


def test_group_by_directory_and_hint(events):
    lib = analyze(str(events))
    listed = [s for s in lib.symbols if s.relocations or s.size]
    for key in ("directory", "hint", "file"):
        groups = group_by(lib, key)
        assert sum(g.count for g in groups) == len(listed)
        assert sum(g.relocations for g in groups) == oracle.relocation_total(events)
    directories = {g.label for g in group_by(lib, "directory")}
    assert str(fixture("events.eo.c").parent) in directories
    by_hint = {g.label: g for g in group_by(lib, "hint")}
    assert by_hint["string_pointer_table"].count == 30


def test_group_by_rejects_an_unknown_key(events):
    proc = subprocess.run([sys.executable, "-m", "relrocheck", "report", "--group-by", "color",
                           str(events)], capture_output=True, text=True)
    assert proc.returncode == 2 and "--group-by" in proc.stderr


@pytest.mark.parametrize("key", ["file", "hint"])
def test_scan_group_by(events, tmp_path, key):
    root = tmp_path / "root"
    root.mkdir()
    (root / events.name).write_bytes(events.read_bytes())
    doc = json.loads(_run("scan", str(root), "--group-by", key, "--format", "json",
                          "--jobs", "1"))
    rows = doc["libraries"][0]["symbols"]
    per_symbol = oracle.relocations_per_symbol(events)
    descriptors = [s["name"] for s in _descriptors(events)]
    if key == "file":
        row = next(r for r in rows if r["name"].endswith("events.eo.c"))
        assert row["members"] == 30
    else:
        row = next(r for r in rows if r["name"] == "string_pointer_table")
        assert row["members"] == 30 and row["hint"] == "string_pointer_table"
    assert row["relocations"] == sum(per_symbol[n] for n in descriptors)
    text = _run("scan", str(root), "--group-by", key, "--jobs", "1")
    assert "30 x " in text
