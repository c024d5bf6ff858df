"""`relrocheck init`: the starter policy is the defaults spelled out, the first baseline is
recorded beside it, and the output says what to commit."""

from __future__ import annotations

import json
from pathlib import Path

import oracle
from gatelibs import assert_one_error_line, build_gate_lib, run_cli

from relrocheck.policy import default_policy, load_policy


def test_init_writes_the_defaults_and_the_first_baseline(tmp_path: Path) -> None:
    lib = build_gate_lib(tmp_path / "build")
    table = build_gate_lib(tmp_path / "table", table=True)
    project = tmp_path / "project"
    project.mkdir()
    proc = run_cli("init", str(lib), "--policy", "ci/relro.yaml", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "git add ci/relro.yaml ci/relro-baseline.json" in proc.stdout
    policy_file = project / "ci" / "relro.yaml"
    text = policy_file.read_text()
    assert text.count("\n  # ") >= 10  # commented, key by key
    # The same judgement as no policy at all.
    written = load_policy(str(policy_file))
    from relrocheck.measure import measure

    measured = measure(str(lib))
    assert written.for_library(measured) == default_policy().for_library(measured)
    entries = json.loads((project / "ci" / "relro-baseline.json").read_text())["libraries"]
    assert entries["libgate.so"]["totals"]["relocations"] == oracle.relocation_total(lib)
    # The printed check command works as printed, and the gate guards from now on.
    assert run_cli("check", str(lib), "--policy", "ci/relro.yaml", cwd=project).returncode == 0
    assert run_cli("check", str(table), "--policy", "ci/relro.yaml", cwd=project
                   ).returncode == 1
    # An existing policy is never overwritten.
    before = text
    assert_one_error_line(run_cli("init", "--policy", "ci/relro.yaml", cwd=project),
                          "ci/relro.yaml exists; not overwritten")
    assert policy_file.read_text() == before


def test_init_without_libraries_says_how_to_record_them(tmp_path: Path) -> None:
    proc = run_cli("init", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "relro.yaml").is_file() and not (tmp_path / "relro-baseline.json").exists()
    assert "relrocheck --baseline update LIB... --policy relro.yaml" in proc.stdout
    load_policy(str(tmp_path / "relro.yaml"))
