"""A failing gate never reports success: a reader that leaves early (`| true`), a closed
stdout (`>&-`), and --stamp/--depfile paths that name an input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gatelibs import PACKAGE_ROOT, assert_one_error_line, build_gate_lib, run_cli


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("integrity")
    return {"v1": build_gate_lib(root / "v1"), "table": build_gate_lib(root / "table", table=True)}


@pytest.fixture
def recorded(tmp_path: Path, libs: dict[str, Path]) -> Path:
    path = tmp_path / "relro-baseline.json"
    proc = run_cli("--baseline", "update", str(libs["v1"]), "--baseline-file", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env.pop("RELROCHECK_SKIP", None)
    return env


def run_reader_gone(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with stdout a pipe whose only reader is closed before the child writes."""
    proc = subprocess.Popen([sys.executable, "-m", "relrocheck", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    proc.stdout.close()  # like `| true`: nobody will ever read
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def run_stdout_closed(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI started with file descriptor 1 closed, as by the shell's `>&-`."""
    command = " ".join(f"'{a}'" for a in (sys.executable, "-m", "relrocheck", *args))
    return subprocess.run(["sh", "-c", f"exec {command} >&-"], capture_output=True, text=True,
                          env=_env(), timeout=120, check=False)


@pytest.mark.parametrize("runner", [run_reader_gone, run_stdout_closed])
def test_failing_check_without_a_reader_exits_1_and_removes_the_stamp(
        runner, tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    stamp = tmp_path / "gate.stamp"
    base = ("--baseline-file", str(recorded), "--stamp", str(stamp))
    assert run_cli("check", str(libs["v1"]), *base).returncode == 0
    assert stamp.is_file()  # an earlier pass left its stamp
    proc = runner("check", str(libs["table"]), *base)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "AttributeError" not in proc.stderr
    assert not stamp.exists(), "a stale stamp survived a failed check"


@pytest.mark.parametrize("runner", [run_reader_gone, run_stdout_closed])
def test_passing_check_without_a_reader_writes_no_stamp(
        runner, tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    stamp = tmp_path / "gate.stamp"
    stamp.write_text("stale\n")
    proc = runner("check", str(libs["v1"]), "--baseline-file", str(recorded), "--stamp",
                  str(stamp))
    assert_one_error_line(proc, "the verdict could not be written")
    assert not stamp.exists()


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_every_format_keeps_the_verdict_through_a_closed_pipe(
        fmt: str, libs: dict[str, Path], recorded: Path) -> None:
    proc = run_reader_gone("check", str(libs["table"]), "--baseline-file", str(recorded),
                           "--format", fmt)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("buffered", [False, True])
def test_report_into_a_closed_pipe_is_not_an_error(libs: dict[str, Path], buffered: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Buffered, the text is still in stdout's buffer when main returns: the final flush
    # meets the closed pipe (unbuffered, the write in main does).
    if buffered:
        monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    else:
        monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    proc = run_reader_gone("report", str(libs["v1"]))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("option", ["--stamp", "--depfile"])
@pytest.mark.parametrize("victim", ["library", "policy", "baseline", "default baseline"])
def test_stamp_or_depfile_naming_an_input_is_refused_and_nothing_touched(
        option: str, victim: str, tmp_path: Path, libs: dict[str, Path]) -> None:
    lib = tmp_path / "libgate.so"
    lib.write_bytes(libs["v1"].read_bytes())
    baseline = tmp_path / "relro-baseline.json"
    assert run_cli("--baseline", "update", str(lib), "--baseline-file", str(baseline)
                   ).returncode == 0
    policy = tmp_path / "relro.yaml"
    policy.write_text("baseline: {file: relro-baseline.json}\n")
    # The same file under another spelling: through a symlink and a relative path.
    (tmp_path / "link").symlink_to(tmp_path)
    target = {"library": lib, "policy": policy, "baseline": baseline,
              "default baseline": baseline}[victim]
    spelled = str(tmp_path / "link" / target.name)
    args = ["check", str(lib)]
    if victim == "default baseline":
        cwd = tmp_path  # no policy, no --baseline-file: ./relro-baseline.json
    else:
        cwd = None
        args += ["--policy", str(policy)]
    if option == "--depfile":
        args += ["--stamp", str(tmp_path / "ok.stamp")]
    before = {p: p.read_bytes() for p in (lib, policy, baseline)}
    proc = run_cli(*args, option, spelled, cwd=cwd)
    assert_one_error_line(proc, f"{option} {spelled} names the input")
    assert {p: p.read_bytes() for p in (lib, policy, baseline)} == before
    # And a library given as the output of a failing check is not deleted either.
    proc = run_cli("check", str(libs["table"]), "--baseline-file", str(baseline), option,
                   str(libs["table"]), *(("--stamp", str(tmp_path / "s")) if option == "--depfile"
                                         else ()))
    assert proc.returncode == 2 and libs["table"].is_file()


def test_relrocheck_skip_passes_with_one_line_and_writes_the_stamp(
        tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    stamp = tmp_path / "gate.stamp"
    env = _env()
    env["RELROCHECK_SKIP"] = "1"
    proc = subprocess.run([sys.executable, "-m", "relrocheck", "check", str(libs["table"]),
                           "--baseline-file", str(recorded), "--stamp", str(stamp)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "relrocheck: check skipped (RELROCHECK_SKIP=1 in the environment)"]
    assert stamp.is_file()
    # Without it, the same check fails: the skip is what passed it.
    assert run_cli("check", str(libs["table"]), "--baseline-file", str(recorded)
                   ).returncode == 1


def run_into_a_full_disk(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with stdout on /dev/full: every write fails with ENOSPC, as on a full disk."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        return subprocess.run([sys.executable, "-m", "relrocheck", *args], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=_env(), timeout=120,
                              check=False)


def test_failing_check_into_a_full_disk_exits_1_and_says_the_verdict_is_lost(
        tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    stamp = tmp_path / "gate.stamp"
    stamp.write_text("stale\n")
    proc = run_into_a_full_disk("check", str(libs["table"]), "--baseline-file", str(recorded),
                                "--stamp", str(stamp))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        "relrocheck: error: the verdict could not be written (writing stdout failed: No space "
        "left on device)"], proc.stderr
    assert not stamp.exists()


def test_passing_check_into_a_full_disk_is_an_error_and_writes_no_stamp(
        tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    stamp = tmp_path / "gate.stamp"
    proc = run_into_a_full_disk("check", str(libs["v1"]), "--baseline-file", str(recorded),
                                "--stamp", str(stamp))
    assert_one_error_line(proc, "the verdict could not be written", "No space left on device")
    assert not stamp.exists()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_report_into_a_full_disk_is_one_error_line(fmt: str, libs: dict[str, Path]) -> None:
    proc = run_into_a_full_disk("report", "--format", fmt, str(libs["v1"]))
    assert_one_error_line(proc, "writing the output failed", "No space left on device")
