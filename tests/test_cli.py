"""The command line a newcomer types: options between the libraries, typos of commands, the
schemas of every JSON output (each command's real output validated against its schema), and
0 meaning "all" for both --top and --symbols."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
from gatelibs import run_cli
from libbuild import build_library, fixture
from referencing import Registry, Resource

SCHEMA_NAMES = ("policy", "report", "scan", "check", "diff", "explain", "verify")


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    tables = "".join(f'const char *t{i}[] = {{"a{i}", "b{i}"}};\n' for i in range(6))
    return {"a": build_library(root / "a", "pointer_tables", fixture("pointer_tables.c")),
            "b": build_library(root / "b", "tables", tables)}


def printed_schemas() -> dict[str, dict]:
    out = {}
    for name in SCHEMA_NAMES:
        proc = run_cli("schema", name)
        assert proc.returncode == 0, proc.stderr
        out[name] = json.loads(proc.stdout)
    return out


def validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for `name` that resolves the schemas' references to each other."""
    schemas = printed_schemas()
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values())
    schema = schemas[name]
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=registry)


def assert_valid(name: str, document: object) -> None:
    errors = list(validator(name).iter_errors(document))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


# --- intermixed options ---------------------------------------------------------------------


def test_options_between_libraries(tmp_path: Path, libs: dict[str, Path]) -> None:
    base = tmp_path / "base.json"
    proc = run_cli("--baseline", "update", str(libs["a"]), "--baseline-file", str(base),
                   str(libs["b"]))
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(base.read_text())["libraries"]) == {"libpointer_tables.so",
                                                               "libtables.so"}
    proc = run_cli("check", str(libs["a"]), "--baseline-file", str(base), str(libs["b"]),
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [x["name"] for x in json.loads(proc.stdout)["libraries"]] == [
        "libpointer_tables.so", "libtables.so"]


# --- typos ----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, suggestion", [
    (["reprot", "LIB"], "'report'"),
    (["chekc", "LIB"], "'check'"),
    (["baseline", "update", "LIB"], "'--baseline update'"),
])
def test_typo_is_answered_not_checked(tmp_path: Path, libs: dict[str, Path], argv: list[str],
                                      suggestion: str) -> None:
    argv = [str(libs["a"]) if a == "LIB" else a for a in argv]
    proc = run_cli(*argv, "--baseline-file", str(tmp_path / "base.json"), cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("relrocheck: error: ") and f"did you mean {suggestion}?" in line
    assert proc.stdout == ""  # no check ran
    assert not (tmp_path / "base.json").exists()


def test_a_file_named_like_a_command_is_still_checked(tmp_path: Path,
                                                      libs: dict[str, Path]) -> None:
    (tmp_path / "reprot").write_bytes(libs["a"].read_bytes())
    proc = run_cli("reprot", "--baseline-file", str(tmp_path / "b.json"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # checked: no baseline entry yet
    assert "did you mean" not in proc.stderr


# --- schemas --------------------------------------------------------------------------------


def test_every_schema_is_printed_and_valid() -> None:
    for name, schema in printed_schemas().items():
        jsonschema.validators.validator_for(schema).check_schema(schema)
        assert schema["$id"].endswith(f"/{name}.schema.json"), name


def test_report_and_scan_output_follow_their_schemas(tmp_path: Path,
                                                     libs: dict[str, Path]) -> None:
    assert_valid("report", json.loads(run_cli("report", "--format", "json", str(libs["a"]),
                                              str(tmp_path / "missing.so")).stdout))
    assert_valid("scan", json.loads(run_cli("scan", "--format", "json",
                                            str(libs["a"].parent)).stdout))


def test_check_and_diff_output_follow_their_schemas(tmp_path: Path,
                                                    libs: dict[str, Path]) -> None:
    base = tmp_path / "base.json"
    assert run_cli("--baseline", "update", str(libs["a"]), "--baseline-file",
                   str(base)).returncode == 0
    # a failing check (libtables.so has no entry), one with an unreadable input, an update
    for argv in (["check", str(libs["a"]), str(libs["b"])],
                 ["check", str(libs["a"]), str(tmp_path / "missing.so")],
                 ["--baseline", "update", str(libs["b"])]):
        proc = run_cli(*argv, "--baseline-file", str(base), "--format", "json")
        document = json.loads(proc.stdout)
        assert_valid("check", document)
        assert document["status"] == {0: "ok", 1: "fail", 2: "error"}[proc.returncode]
    proc = run_cli("diff", str(base), str(libs["b"]), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert_valid("diff", json.loads(proc.stdout))


def test_explain_output_follows_its_schema(libs: dict[str, Path]) -> None:
    proc = run_cli("explain", str(libs["b"]), "t0", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert_valid("explain", document)
    (entry,) = document["symbols"]
    assert len(entry["words"]) == 2  # t0 holds two pointers


def test_verify_output_follows_its_schema(libs: dict[str, Path]) -> None:
    proc = run_cli("verify", str(libs["b"]), "--format", "json")
    if proc.returncode == 2 and "cat" in proc.stderr:
        pytest.skip(f"verify cannot run here: {proc.stderr.strip()}")
    assert_valid("verify", json.loads(proc.stdout))


# --- 0 = all, for --top and --symbols alike ---------------------------------------------------


def test_zero_means_all_for_top_and_symbols(libs: dict[str, Path]) -> None:
    nm = subprocess.run(["nm", str(libs["b"])], capture_output=True, text=True,
                        check=True).stdout
    tables = [x for x in nm.split() if re.fullmatch(r"t\d+", x)]
    assert len(tables) == 6
    scan = json.loads(run_cli("scan", "--format", "json", "--symbols", "0",
                              str(libs["b"].parent)).stdout)
    (lib,) = scan["libraries"]
    assert {s["name"] for s in lib["symbols"]} >= set(tables)
    report = json.loads(run_cli("report", "--format", "json", "--top", "0",
                                str(libs["b"])).stdout)
    assert {s["name"] for s in report["libraries"][0]["symbols"]} >= set(tables)
    for command in (["scan", str(libs["b"].parent)], ["report", str(libs["b"])]):
        help_text = " ".join(run_cli(command[0], "--help").stdout.split())
        assert "0 = none" not in help_text
        assert help_text.count("0 = all") >= 1
