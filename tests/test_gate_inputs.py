"""Policy, baseline and diff inputs a gate must survive: float counts, corrupt and conflicted
baselines, mutated JSON reports, leftovers of interrupted updates, and a very large policy."""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from gatelibs import assert_one_error_line, build_gate_lib, run_cli

from relrocheck import baseline, cli
from relrocheck.errors import BaselineError, PolicyError
from relrocheck.policy import load_policy, policy_schema
from relrocheck.schemacheck import quick_validator, strict_validator

EXAMPLE_POLICY = Path(__file__).resolve().parent.parent / "policy.example.yaml"


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    return {"v1": build_gate_lib(root / "v1"), "table": build_gate_lib(root / "table", table=True),
            "other": build_gate_lib(root / "other", name="other")}


# --- policy --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, where", [
    ("regression:\n  relocations: 5.0\n", "2:16: regression.relocations: 5.0 is not of type"),
    ("regression:\n  writable_bytes: {absolute: 2.5}\n",
     "2:30: regression.writable_bytes.absolute: 2.5 is not of type 'integer'"),
    ("limits:\n  writable_bytes: 10.0\n", "2:19: limits.writable_bytes: 10.0 is not of type"),
    ("libraries:\n  - match: 'lib*'\n    limits: {relocations: 1.0e+3}\n",
     "3:27: libraries[0].limits.relocations: 1000.0 is not of type"),
])
def test_float_counts_are_refused_at_their_line_and_column(
        tmp_path: Path, libs: dict[str, Path], text: str, where: str) -> None:
    policy = tmp_path / "relro.yaml"
    policy.write_text(text)
    proc = run_cli("check", str(libs["v1"]), "--policy", str(policy))
    assert_one_error_line(proc, f"{policy}:{where}")


def test_percent_growth_may_be_a_fraction(tmp_path: Path) -> None:
    policy = tmp_path / "relro.yaml"
    policy.write_text("regression:\n  relocations: {percent: 1.5}\n")
    growth = load_policy(str(policy)).for_library
    assert load_policy(str(policy)).settings["regression"]["relocations"] == {"percent": 1.5}
    assert growth is not None


def _mutations(value: Any) -> list[Any]:
    return [None, -1, 5.0, 7, "x", "", [], {}, True, [1], {"bogus": 1}, 10 ** 30, "fail"]


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _replace(doc: Any, path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    try:
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass  # an earlier mutation removed this path: keep the document as it is
    return doc


def test_quick_check_agrees_with_jsonschema_on_mutated_policies() -> None:
    import yaml

    schema = policy_schema()
    quick, strict = quick_validator(schema), strict_validator(schema)
    assert quick is not None
    example = yaml.safe_load(EXAMPLE_POLICY.read_text()) or {}
    docs = [example]
    rng = random.Random(11)
    paths = _paths(example)
    for _ in range(1500):
        path = rng.choice(paths)
        docs.append(_replace(example, path, rng.choice(_mutations(None))))
    accepted = rejected = 0
    for doc in docs:
        valid = strict.is_valid(doc)
        # Never more lenient than jsonschema; and on these documents, exactly as strict.
        assert quick(doc) == valid, doc
        accepted += valid
        rejected += not valid
    assert accepted > 10 and rejected > 100, (accepted, rejected)


def _big_policy(path: Path, entries: int) -> None:
    lines = ["libraries:"]
    lines += [f"  - {{match: 'libf{i}.so*', limits: {{relocations: {i}}}}}"
              for i in range(entries)]
    path.write_text("\n".join(lines) + "\n")


def test_a_large_policy_loads_in_linear_time(tmp_path: Path) -> None:
    small, large = tmp_path / "small.yaml", tmp_path / "large.yaml"
    _big_policy(small, 1500)
    _big_policy(large, 15000)
    assert large.stat().st_size < 1 << 20  # within the policy size cap

    def cost(path: Path) -> float:
        best = float("inf")
        for _ in range(2):
            start = time.process_time()
            policy = load_policy(str(path))
            best = min(best, time.process_time() - start)
        assert len(policy.libraries) in (1500, 15000)
        return best

    small_cost, large_cost = cost(small), cost(large)
    # 10 times the entries: about 10 times the work (quadratic would be 100 times).
    assert large_cost < 25 * max(small_cost, 0.01), (small_cost, large_cost)
    assert large_cost < 3.0, large_cost  # CPU seconds, on a busy 2-core CI machine


# --- baseline ------------------------------------------------------------------------------


def test_deeply_nested_baseline_is_a_corrupt_baseline(tmp_path: Path,
                                                      libs: dict[str, Path]) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"format_version": 1, "libraries": ' + "[" * 100000 + "]" * 100000 + "}")
    proc = run_cli("check", str(libs["v1"]), "--baseline-file", str(path))
    assert_one_error_line(proc, "corrupt baseline (nested too deeply)")


@pytest.mark.parametrize("where", ["top", "library", "symbol"])
def test_duplicate_keys_in_a_baseline_are_refused(tmp_path: Path, libs: dict[str, Path],
                                                  where: str) -> None:
    path = tmp_path / "b.json"
    assert run_cli("--baseline", "update", str(libs["v1"]), "--baseline-file", str(path)
                   ).returncode == 0
    lines = path.read_text().splitlines()
    if where == "top":
        index = next(i for i, line in enumerate(lines) if '"format_version"' in line)
    elif where == "library":
        index = next(i for i, line in enumerate(lines) if '"machine"' in line)
    else:
        index = next(i for i, line in enumerate(lines) if '"colors"' in line)
    lines.insert(index, lines[index] if lines[index].endswith(",") else lines[index] + ",")
    path.write_text("\n".join(lines) + "\n")
    json.loads(path.read_text())  # valid JSON: the duplicate is what is wrong
    before = path.read_bytes()
    proc = run_cli("check", str(libs["v1"]), "--baseline-file", str(path))
    assert_one_error_line(proc, "corrupt baseline (duplicate key")
    proc = run_cli("--baseline", "update", str(libs["v1"]), "--baseline-file", str(path))
    assert_one_error_line(proc, "corrupt baseline (duplicate key")
    assert path.read_bytes() == before, "a corrupt baseline must never be overwritten"


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder,
                          capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_merge_conflict_in_the_baseline_says_how_to_resolve(tmp_path: Path,
                                                            libs: dict[str, Path]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert _git(repo, "init", "-q").returncode == 0
    lib = repo / "libgate.so"
    shutil.copy(libs["v1"], lib)
    shutil.copy(libs["other"], repo / "libother.so")
    assert run_cli("--baseline", "update", "libgate.so", "libother.so", cwd=repo).returncode == 0
    _git(repo, "add", "relro-baseline.json")
    assert _git(repo, "commit", "-qm", "v1").returncode == 0
    _git(repo, "checkout", "-qb", "feature")
    shutil.copy(libs["table"], lib)
    assert run_cli("--baseline", "update", "libgate.so", cwd=repo).returncode == 0
    assert _git(repo, "commit", "-qam", "table").returncode == 0
    _git(repo, "checkout", "-q", "-")
    lib.write_bytes(build_gate_lib(tmp_path / "ops", ops=True).read_bytes())
    assert run_cli("--baseline", "update", "libgate.so", cwd=repo).returncode == 0
    assert _git(repo, "commit", "-qam", "ops").returncode == 0
    merge = _git(repo, "merge", "feature")
    assert merge.returncode != 0 and "CONFLICT" in merge.stdout, merge.stdout
    text = (repo / "relro-baseline.json").read_text()
    assert "<<<<<<<" in text
    marker_line = text.splitlines().index(next(l for l in text.splitlines()
                                               if l.startswith("<<<<<<<"))) + 1
    for args in (("check", "libgate.so"), ("--baseline", "update", "libgate.so")):
        proc = run_cli(*args, cwd=repo)
        line = assert_one_error_line(proc, f"unresolved git merge conflict at line {marker_line}",
                                     "(entries of libgate.so)", "keeping either side",
                                     "relrocheck --baseline update libgate.so")
        assert "delete it" not in line and "libother.so" not in line.split("not delete")[0]
    assert (repo / "relro-baseline.json").read_text() == text
    # Taking one side, as the message says, and updating resolves it.
    kept = []
    side = None
    for row in text.splitlines(keepends=True):
        if row.startswith("<<<<<<<"):
            side = "ours"
        elif row.startswith("=======") and side:
            side = "theirs"
        elif row.startswith(">>>>>>>") and side:
            side = None
        elif side != "theirs":
            kept.append(row)
    (repo / "relro-baseline.json").write_text("".join(kept))
    assert run_cli("--baseline", "update", "libgate.so", cwd=repo).returncode == 0
    assert run_cli("check", "libgate.so", "libother.so", cwd=repo).returncode == 0


def test_stale_temporaries_are_removed_by_the_next_update(tmp_path: Path,
                                                          libs: dict[str, Path]) -> None:
    path = tmp_path / "relro-baseline.json"
    assert run_cli("--baseline", "update", str(libs["v1"]), "--baseline-file", str(path)
                   ).returncode == 0
    # An interrupted writer: its process is gone.
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = tmp_path / f".relro-baseline.json.{dead.pid}.abc123.tmp"
    old = tmp_path / ".relro-baseline.json.q1w2e3.tmp"  # an older writer's name, an hour old
    young = tmp_path / ".relro-baseline.json.r4t5y6.tmp"  # maybe still written: kept
    alive = tmp_path / f".relro-baseline.json.{os.getppid()}.zzz.tmp"  # its writer is running
    unrelated = tmp_path / ".other.json.1.x.tmp"
    for p in (gone, old, young, alive, unrelated):
        p.write_text("{")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    assert run_cli("--baseline", "update", str(libs["other"]), "--baseline-file", str(path)
                   ).returncode == 0
    assert not gone.exists() and not old.exists()
    assert young.exists() and alive.exists() and unrelated.exists()
    assert set(baseline.read(str(path)) or {}) == {"libgate.so", "libother.so"}


# --- diff inputs ---------------------------------------------------------------------------


def _run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def test_diff_of_mutated_reports_is_one_error_line_never_a_traceback(
        tmp_path: Path, libs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.json"
    proc = run_cli("report", "--format", "json", "--top", "0", str(libs["v1"]))
    assert proc.returncode == 0
    old.write_text(proc.stdout)
    report = json.loads(proc.stdout)
    paths = [p for p in _paths(report) if p]
    rng = random.Random(9)
    mutated = tmp_path / "new.json"
    outcomes = {0: 0, 2: 0}
    for case in range(400):
        doc = report
        for _ in range(rng.choice((1, 1, 2, 3))):
            doc = _replace(doc, rng.choice(paths), rng.choice(_mutations(None)))
        mutated.write_text(json.dumps(doc))
        order = (str(old), str(mutated)) if case % 2 else (str(mutated), str(old))
        code, err = _run_main(capsys, "diff", *order)  # an exception here fails the test
        assert code in (0, 2), (code, err)
        if code == 2:
            lines = err.splitlines()
            assert len(lines) == 1 and lines[0].startswith("relrocheck: error: "), err
        outcomes[code] += 1
    # Most mutations break the report, and some (a symbol's name or an address) do not.
    assert outcomes[2] > 200 and outcomes[0] > 5, outcomes


def test_diff_names_the_bad_field(tmp_path: Path, libs: dict[str, Path]) -> None:
    proc = run_cli("report", "--format", "json", "--top", "0", str(libs["v1"]))
    report = json.loads(proc.stdout)
    report["libraries"][0]["symbols"][0]["relocations"] = 3.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(report))
    proc = run_cli("diff", str(libs["v1"]), str(bad))
    assert_one_error_line(proc, f"{bad}: not a valid relrocheck JSON report: "
                                "libraries[0].symbols[0].relocations: 3.0 is not of type")


def test_diff_of_a_conflicted_baseline_is_one_error_line(tmp_path: Path,
                                                         libs: dict[str, Path]) -> None:
    path = tmp_path / "b.json"
    path.write_text('{\n<<<<<<< HEAD\n  "format_version": 1,\n=======\n  "format_version": 1,\n'
                    '>>>>>>> other\n  "libraries": {}\n}\n')
    proc = run_cli("diff", str(path), str(libs["v1"]))
    assert_one_error_line(proc, "unresolved git merge conflict at line 2")


def test_baseline_parse_raises_only_baseline_errors_on_mutations(libs: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    assert run_cli("--baseline", "update", str(libs["v1"]), "--baseline-file", str(path)
                   ).returncode == 0
    data = json.loads(path.read_text())
    paths = [p for p in _paths(data) if p]
    rng = random.Random(5)
    errors = 0
    for _ in range(400):
        doc = _replace(data, rng.choice(paths), rng.choice(_mutations(None)))
        try:
            baseline.parse(json.dumps(doc), "b.json")
        except BaselineError as exc:
            assert "\n" not in str(exc)
            errors += 1
    assert errors > 200
    with pytest.raises(PolicyError):
        bad = tmp_path / "p.yaml"
        bad.write_text("regression: {relocations: 5.0}\n")
        load_policy(str(bad))
