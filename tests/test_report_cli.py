"""`relrocheck report` end to end: the console entry points, the text report and the JSON
document, checked against the shipped schema and against readelf."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import oracle
import pytest
from libbuild import build_library, fixture

import relrocheck

SCHEMA = Path(relrocheck.__file__).parent / "schemas" / "report.schema.json"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relrocheck", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("report"), "pointer_tables",
                         fixture("pointer_tables.c"))


def test_json_report_follows_the_shipped_schema(lib: Path) -> None:
    proc = run("report", "--format", "json", str(lib))
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    (entry,) = document["libraries"]
    assert entry["name"] == "libpointer_tables.so" == oracle.dynamic(lib)["SONAME"][0]
    assert entry["relocations"]["total"] == oracle.relocation_total(lib)
    assert entry["relocations"]["by_type"] == dict(oracle.relocation_type_counts(lib))
    assert entry["pages"]["relocated"] == oracle.pages_with_relocations(lib)
    sizes = {s["name"]: s["size"] for s in entry["sections"]}
    readelf = oracle.sections(lib)
    assert all(readelf[name]["size"] == size for name, size in sizes.items())
    names = next(s for s in entry["symbols"] if s["name"] == "names")
    assert names["relocations"] == oracle.relocations_per_symbol(lib)["names"]
    assert entry["symbols_total"] == len(entry["symbols"])


def test_json_top_limits_symbols(lib: Path) -> None:
    document = json.loads(run("report", "--format", "json", "--top", "2", str(lib)).stdout)
    (entry,) = document["libraries"]
    assert len(entry["symbols"]) == 2 < entry["symbols_total"]


def test_text_report_names_costly_symbols_first(lib: Path) -> None:
    proc = run("report", str(lib))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("libpointer_tables.so")
    assert f"Dynamic relocations: {oracle.relocation_total(lib)}" in out
    pages = oracle.pages_with_relocations(lib)
    assert f"Pages written at load: {pages} relocated" in out
    symbol_rows = [line.split() for line in out.splitlines()
                   if line.startswith("    ") and line.split()[:1] and line.split()[0].isdigit()]
    assert symbol_rows, out
    # Sorted by cost: pages freed if fixed, then pages touched, then relocations, descending.
    costs = [(int(r[0]), int(r[1]), int(r[2])) for r in symbol_rows]
    assert costs == sorted(costs, reverse=True)
    assert any(r[-1] == "names" and r[2] == "40" for r in symbol_rows)
    # The writable segments and the RELRO range, as readelf -lW gives them.
    for seg in oracle.segments(lib):
        if seg["type"] == "LOAD" and "W" in seg["flags"]:
            end = seg["address"] + seg["memory_size"]
            assert f"RW PT_LOAD 0x{seg['address']:x}-0x{end:x}:" in out
    relro = oracle.relro_range(lib)
    assert relro is not None and f"PT_GNU_RELRO 0x{relro[0]:x}-0x{relro[1]:x}:" in out


def test_top_zero_lists_every_symbol(lib: Path) -> None:
    limited = run("report", "--top", "1", str(lib)).stdout
    full = run("report", "--top", "0", str(lib)).stdout
    assert "more (--top N shows more" in limited
    assert "more (--top N shows more" not in full
    assert "plain_data" in full


def test_console_script_and_version(lib: Path) -> None:
    script = Path(sys.executable).with_name("relrocheck")
    if not script.exists():
        pytest.skip("relrocheck is not installed as a console script in this environment")
    from relrocheck.native import kernels

    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    how = "compiled kernels" if kernels is not None else "pure Python"
    assert proc.stdout.startswith(f"relrocheck {relrocheck.__version__} ({how}")
    pure = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          env={**os.environ, "RELROCHECK_PURE_PYTHON": "1"})
    assert pure.stdout.startswith(f"relrocheck {relrocheck.__version__} (pure Python")
    proc = subprocess.run([str(script), "report", str(lib)], capture_output=True, text=True)
    assert proc.returncode == 0 and "names" in proc.stdout


def test_help_teaches_the_commands() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    assert "report" in proc.stdout and "exit codes" in proc.stdout
    proc = run("report", "--help")
    assert "--page-size" in proc.stdout and "examples:" in proc.stdout


def test_schema_lists_every_hint_kind() -> None:
    from relrocheck.hints import HINT_KINDS

    schema = json.loads(SCHEMA.read_text())
    kinds = schema["$defs"]["symbol"]["properties"]["hint"]["oneOf"][1]["properties"]["kind"]
    assert kinds["enum"] == list(HINT_KINDS)


def test_json_written_in_pieces_is_the_whole_document(lib: Path) -> None:
    from relrocheck.measure import measure
    from relrocheck.serialize import report_document, report_json_chunks

    libraries = [measure(str(lib)), measure("/usr/lib/x86_64-linux-gnu/libz.so.1")] \
        if Path("/usr/lib/x86_64-linux-gnu/libz.so.1").exists() else [measure(str(lib))]
    errors = [("/missing.so", "no such file")]
    for top in (None, 2):
        text = "".join(report_json_chunks(libraries, errors, top=top, batch=3))
        whole = json.dumps(report_document(libraries, errors, top=top))
        assert json.loads(text) == json.loads(whole)
