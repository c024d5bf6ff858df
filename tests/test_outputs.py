"""The CI formats end to end (SARIF, GitHub annotations, GitLab Code Quality, JSON and
Markdown of check), and output safety: names read from a library never start a workflow
command nor carry a control character, in any format.

Source lines are checked against the fixture's own text (the line holding the declaration),
SARIF against the official SARIF 2.1.0 JSON Schema (tests/data, from OASIS sarif-spec)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from gatelibs import PACKAGE_ROOT, run_cli
from libbuild import build_library, fixture

from relrocheck.render.github import escape_data, escape_property

SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
SOURCE = fixture("ci_outputs.c")
HOSTILE = {
    "evil_newline": "\n::error file=main.c,line=1::relrocheck passed",
    "evil_escape": "\x1b]0;x\x07\x1b[2K",
}
# Any C0 control but the newline that ends lines, DEL and C1 controls.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def declaration_line(name: str) -> int:
    """The line of `name`'s declaration in the fixture, found in its text."""
    lines = SOURCE.read_text().splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if re.match(rf"const char \*{name}\[\]",
                                                                  line)]
    return number


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture with debug info: names[] and two more tables, under their plain names."""
    return build_library(tmp_path_factory.mktemp("ci"), "ci_outputs", SOURCE, flags=["-g"])


@pytest.fixture(scope="module")
def hostile_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same library, two of its symbols renamed to hostile names in the object file."""
    if shutil.which("objcopy") is None:
        pytest.skip("objcopy (binutils) is needed to give symbols hostile names")
    tmp = tmp_path_factory.mktemp("hostile")
    obj = tmp / "ci_outputs.o"
    subprocess.run(["cc", "-g", "-O2", "-fPIC", "-c", "-o", str(obj), str(SOURCE)], check=True)
    renames = [a for old, new in HOSTILE.items() for a in ("--redefine-sym", f"{old}={new}")]
    subprocess.run(["objcopy", *renames, str(obj)], check=True)
    out = tmp / "libhostile.so"
    subprocess.run(["cc", "-shared", "-Wl,-soname,libhostile.so", "-o", str(out), str(obj)],
                   check=True)
    nm = subprocess.run(["nm", "-D", str(out)], capture_output=True, check=True).stdout
    assert all(name.encode() in nm for name in HOSTILE.values()), "the renames did not happen"
    return out


def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SARIF_SCHEMA.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    return jsonschema.Draft4Validator(schema)


def root_args() -> list[str]:
    return ["--source-root", str(SOURCE.parent.parent)]  # tests/: the fixture is fixtures/...


def check_without_names(tmp_path: Path, lib: Path, fmt: str, *extra: str
                        ) -> subprocess.CompletedProcess[str]:
    """`check` against a baseline recorded before `names` existed: a new costly symbol."""
    base = tmp_path / "base.json"
    assert run_cli("--baseline", "update", str(lib), "--baseline-file", str(base)).returncode == 0
    document = json.loads(base.read_text())
    for entry in document["libraries"].values():
        entry["symbols"] = {k: v for k, v in entry["symbols"].items() if k != "names"}
    base.write_text(json.dumps(document))
    return run_cli("check", str(lib), "--baseline-file", str(base), "--format", fmt,
                   *root_args(), *extra)


# --- SARIF --------------------------------------------------------------------------------


def test_report_sarif_is_valid_and_on_the_declaration_line(lib: Path) -> None:
    proc = run_cli("report", "--format", "sarif", *root_args(), str(lib))
    assert proc.returncode == 0, proc.stderr
    log = json.loads(proc.stdout)
    errors = sorted(sarif_validator().iter_errors(log), key=str)
    assert not errors, [e.message for e in errors[:5]]
    (run,) = log["runs"]
    by_symbol = {r["locations"][0]["logicalLocations"][0]["name"]: r for r in run["results"]}
    result = by_symbol["names"]
    assert result["ruleId"] == "string_pointer_table"
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "fixtures/ci_outputs.c"
    assert physical["region"]["startLine"] == declaration_line("names")
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids[result["ruleIndex"]] == result["ruleId"]


def test_check_sarif_has_one_result_per_violation(tmp_path: Path, lib: Path) -> None:
    proc = check_without_names(tmp_path, lib, "sarif")
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    assert not list(sarif_validator().iter_errors(log))
    (result,) = log["runs"][0]["results"]
    assert result["level"] == "error"
    assert result["ruleId"] == "string_pointer_table"
    assert result["properties"]["violation"] == "new_symbol"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == declaration_line("names")


def test_sarif_without_debug_info_points_at_the_library(tmp_path: Path) -> None:
    plain = build_library(tmp_path, "nodebug", SOURCE)  # no -g: no source lines
    proc = run_cli("report", "--format", "sarif", "--source-root", str(tmp_path), str(plain))
    log = json.loads(proc.stdout)
    assert not list(sarif_validator().iter_errors(log))
    results = log["runs"][0]["results"]
    assert results
    for r in results:
        physical = r["locations"][0]["physicalLocation"]
        assert "region" not in physical
        assert physical["artifactLocation"]["uri"] == "libnodebug.so"
        assert r["relatedLocations"][0]["physicalLocation"] == physical


# --- GitHub annotations -------------------------------------------------------------------


def test_github_escaping_follows_the_runner() -> None:
    assert escape_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert escape_property("a:b,c%\r\n") == "a%3Ab%2Cc%25%0D%0A"


def test_github_annotation_on_the_declaration_line(lib: Path) -> None:
    proc = run_cli("report", "--format", "github", *root_args(), str(lib))
    assert proc.returncode == 0, proc.stderr
    line = declaration_line("names")
    wanted = f"::warning file=fixtures/ci_outputs.c,line={line},title=relrocheck "
    annotations = [x for x in proc.stdout.splitlines() if x.startswith("::")]
    assert any(x.startswith(wanted + "string_pointer_table::") and " names " in x
               for x in annotations), annotations
    assert "Pages written at load" in proc.stdout  # the text log follows the annotations


def test_github_shows_ten_warnings_and_sums_up_the_rest(tmp_path: Path) -> None:
    tables = "".join(f'const char *t{i}[] = {{"a{i}", "b{i}"}};\n' for i in range(14))
    many = build_library(tmp_path, "many", tables)
    nm = subprocess.run(["nm", str(many)], capture_output=True, text=True, check=True).stdout
    defined = [x for x in nm.split() if re.fullmatch(r"t\d+", x)]
    assert len(defined) == 14
    proc = run_cli("report", "--format", "github", "--top", "0", str(many))
    lines = proc.stdout.splitlines()
    warnings = [x for x in lines if x.startswith("::warning ")]
    assert len(warnings) == 10
    (notice,) = [x for x in lines if x.startswith("::notice ")]
    more = int(re.search(r"(\d+) more warning", notice).group(1))  # type: ignore[union-attr]
    assert more >= len(defined) - 10


def test_github_is_chosen_inside_github_actions_unless_redirected(tmp_path: Path,
                                                                  lib: Path) -> None:
    env = dict(os.environ, GITHUB_ACTIONS="true",
               PYTHONPATH=os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH"))
                                          if p))
    argv = [sys.executable, "-m", "relrocheck", "report", str(lib)]
    piped = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert piped.stdout.startswith("::warning "), piped.stdout[:200]
    out = tmp_path / "report.txt"
    with open(out, "w") as f:
        subprocess.run(argv, stdout=f, env=env, timeout=120, check=True)
    assert out.read_text().startswith("libci_outputs.so")
    explicit = subprocess.run([*argv, "--format", "text"], capture_output=True, text=True,
                              env=env, timeout=120)
    assert explicit.stdout.startswith("libci_outputs.so")


# --- GitLab Code Quality --------------------------------------------------------------------


def test_codequality_issues(tmp_path: Path, lib: Path) -> None:
    proc = check_without_names(tmp_path, lib, "codequality")
    assert proc.returncode == 1, proc.stderr
    (issue,) = json.loads(proc.stdout)
    assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
    assert issue["check_name"] == "string_pointer_table"
    assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
    assert issue["location"] == {"path": "fixtures/ci_outputs.c",
                                 "lines": {"begin": declaration_line("names")}}
    again = json.loads(check_without_names(tmp_path, lib, "codequality").stdout)
    assert again[0]["fingerprint"] == issue["fingerprint"]  # stable across runs


# --- check JSON and Markdown ----------------------------------------------------------------


def test_check_json_is_error_when_an_input_is_unreadable(tmp_path: Path, lib: Path) -> None:
    base = tmp_path / "base.json"
    assert run_cli("--baseline", "update", str(lib), "--baseline-file", str(base)).returncode == 0
    missing = tmp_path / "missing.so"
    proc = run_cli("check", str(lib), str(missing), "--baseline-file", str(base),
                   "--format", "json")
    assert proc.returncode == 2
    document = json.loads(proc.stdout)
    assert document["status"] == "error"
    assert [e["path"] for e in document["errors"]] == [str(missing)]
    md = run_cli("check", str(lib), str(missing), "--baseline-file", str(base),
                 "--format", "markdown")
    assert md.returncode == 2
    assert f"⛔ `{missing}`: error, not checked" in md.stdout


def test_check_json_violation_carries_source_and_hint(tmp_path: Path, lib: Path) -> None:
    proc = check_without_names(tmp_path, lib, "json")
    (library,) = json.loads(proc.stdout)["libraries"]
    (violation,) = library["violations"]
    assert violation["kind"] == "new_symbol" and violation["symbol"] == "names"
    assert violation["hint"] == "string_pointer_table"
    path, line = violation["source"].rsplit(":", 1)
    assert Path(path).resolve() == SOURCE and int(line) == declaration_line("names")


def test_markdown_folds_unchanged_libraries(tmp_path: Path, lib: Path) -> None:
    other = build_library(tmp_path, "other", 'const char *o[] = {"x", "y"};\n')
    base = tmp_path / "base.json"
    assert run_cli("--baseline", "update", str(lib), str(other), "--baseline-file",
                   str(base)).returncode == 0
    proc = run_cli("check", str(lib), str(other), "--baseline-file", str(base),
                   "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    folded = proc.stdout[proc.stdout.index("<details>"):proc.stdout.index("</details>")]
    assert "2 unchanged libraries" in folded
    assert "`libci_outputs.so`" in folded and "`libother.so`" in folded
    assert "###" not in proc.stdout  # no library gets a section of its own


# --- output safety: hostile names in every format -------------------------------------------


def assert_safe(text: str, own_commands: bool = False) -> None:
    """No raw control character; no line that starts a workflow command, except our own
    annotations (in github format), which must then not be the injected one."""
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text))
    for line in text.splitlines():
        if line.startswith("::"):
            assert own_commands, line
            assert re.match(r"::(error|warning|notice) (file|title)=", line), line
            # Parsed as the runner does: "::cmd k=v,k=v::data"; escaped commas stay inside.
            properties = line[2:].split("::", 1)[0].split(" ", 1)[1]
            props = dict(kv.split("=", 1) for kv in properties.split(","))
            assert props.get("file") != "main.c" and props.get("line") != "1", line


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "codequality", "github", "html"])
def test_hostile_names_in_report(hostile_lib: Path, fmt: str) -> None:
    proc = run_cli("report", "--format", fmt, "--top", "0", str(hostile_lib))
    assert proc.returncode == 0, proc.stderr
    assert_safe(proc.stdout, own_commands=fmt == "github")
    # The names are there, escaped (JSON doubles the backslash of the escape).
    shown = proc.stdout.replace("\\\\", "\\") if fmt in ("json", "sarif", "codequality") \
        else proc.stdout
    assert "\\x0a::error file=main.c,line=1::relrocheck passed" in shown
    assert "\\x1b]0;x\\x07\\x1b[2K" in shown


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "sarif", "codequality", "github",
                                 "html"])
def test_hostile_names_in_check(tmp_path: Path, hostile_lib: Path, fmt: str) -> None:
    base = tmp_path / "base.json"
    base.write_text('{"format_version": 1, "libraries": {}}')
    proc = run_cli("check", str(hostile_lib), "--baseline-file", str(base), "--format", fmt,
                   "--policy", str(write_policy(tmp_path)))
    assert proc.returncode == 1, proc.stderr
    assert_safe(proc.stdout + proc.stderr, own_commands=fmt == "github")
    assert "relrocheck passed" in proc.stdout  # the hostile symbol is reported, escaped


def write_policy(tmp_path: Path) -> Path:
    """A policy whose per-symbol limit every table breaks: each hostile name is reported."""
    policy = tmp_path / "relro.yaml"
    policy.write_text("limits:\n  symbol_relocations: 1\n")
    return policy


def test_hostile_file_name_in_an_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "lib\n::error file=main.c,line=1::x\x1b[2K.so"
    bad.write_bytes(b"not an ELF file")
    proc = run_cli("report", str(bad))
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("relrocheck: error: ")
    assert_safe(proc.stderr)


@pytest.mark.parametrize("command, fmt", [
    (c, f) for c, formats in (("report", ("text", "github", "html")),
                              ("check", ("text", "markdown", "github", "html")),
                              ("scan", ("text", "markdown"))) for f in formats])
def test_hostile_file_name_in_every_text_format(tmp_path: Path, fmt: str, command: str) -> None:
    """A library without SONAME is known by its file name, which may hold anything."""
    folder = tmp_path / "tree"
    folder.mkdir()
    lib = folder / "lib\n::error file=main.c,line=1::x\x1b[2K.so"
    subprocess.run(["cc", "-O2", "-fPIC", "-shared", "-o", str(lib), str(SOURCE)], check=True)
    target = [str(folder)] if command == "scan" else [str(lib)]
    extra = ["--baseline-file", str(tmp_path / "none.json")] if command == "check" else []
    proc = run_cli(command, "--format", fmt, *target, *extra)
    assert proc.returncode in (0, 1), proc.stderr
    assert "\\x0a::error file=main.c" in proc.stdout  # the name is shown, escaped
    assert_safe(proc.stdout + proc.stderr, own_commands=fmt == "github")


def test_sarif_warns_of_a_costly_new_symbol_the_policy_allows(tmp_path: Path, lib: Path) -> None:
    policy = tmp_path / "relro.yaml"
    policy.write_text("regression:\n  new_symbols: allow\n  relocations: null\n"
                      "  relocated_pages: null\n  writable_bytes: null\n")
    proc = check_without_names(tmp_path, lib, "sarif", "--policy", str(policy))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = json.loads(proc.stdout)
    assert not list(sarif_validator().iter_errors(log))
    (result,) = log["runs"][0]["results"]
    assert result["level"] == "warning" and result["ruleId"] == "string_pointer_table"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == declaration_line("names")


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_hostile_names_from_a_baseline_in_diff(tmp_path: Path, lib: Path, fmt: str) -> None:
    """A baseline (or JSON report) is a file too: its names are shown escaped."""
    base = tmp_path / "base.json"
    assert run_cli("--baseline", "update", str(lib), "--baseline-file", str(base)).returncode == 0
    document = json.loads(base.read_text())
    for entry in document["libraries"].values():
        entry["symbols"] = {(HOSTILE["evil_newline"] if k == "names" else k): v
                            for k, v in entry["symbols"].items()}
    base.write_text(json.dumps(document))
    proc = run_cli("diff", str(base), str(lib), "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert "\\x0a::error file=main.c,line=1::relrocheck passed" in proc.stdout
    assert_safe(proc.stdout)
