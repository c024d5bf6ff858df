"""Shared pieces of the end-to-end build-system tests (tests/test_cmake.py, tests/test_meson.py).

Those tests configure and build a real C library project with CMake or Meson in a temporary
folder whose path holds a space, and let the build run the real relrocheck: the one this test
run imports, as `sys.executable -m relrocheck`, whether it is installed or only on sys.path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import relrocheck

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

# The library every project builds is the examples' libdemo: one table of string pointers
# (relocated, in .data.rel.ro) and one function.
DEMO_C = (EXAMPLES / "cmake" / "demo.c").read_text()

# The regression the tests introduce: an exported, non-const table of string pointers, the
# textbook new writable symbol (.data, one relocation per entry).
ADDED_SYMBOL = "relro_added_names"
REGRESSION_C = f"""
const char *{ADDED_SYMBOL}[] = {{"alpha", "beta", "gamma", "delta"}};
"""

# The policy the test projects check against: relrocheck's defaults (no growth, no new symbol in
# writable data unless allowlisted) with the baseline given on the command line.
POLICY_YAML = """\
# relrocheck policy of the build-integration tests: the defaults.
"""

# Folder names with a space: a build integration must quote every path it hands over.
PROJECT_DIR = "relro project"
BUILD_DIR = "build dir"


def tool_path() -> str:
    """PATH for the builds: this Python's bin/ first, as if its environment were activated.

    That is where `pip install .[test]` puts meson and ninja, and where the relrocheck console
    script of this environment lives.
    """
    return os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))


def require_program(name: str) -> str:
    """The program's path, or skip the test saying what is missing."""
    path = shutil.which(name, path=tool_path())
    if path is None:
        pytest.skip(f"{name} is not installed (needed for this end-to-end build test)")
    return path


def relrocheck_command() -> list[str]:
    return [sys.executable, "-m", "relrocheck"]


def build_env(tool_bin: Path | None = None) -> dict[str, str]:
    """Environment for a build: the relrocheck under test importable, `tool_bin` first on PATH."""
    env = dict(os.environ)
    # The relrocheck this test run imports, also when it is a source checkout that was never
    # installed: the build runs it from other folders.
    package_root = str(Path(relrocheck.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, env.get("PYTHONPATH", "")) if p
    )
    env["PATH"] = tool_path()
    if tool_bin is not None:
        env["PATH"] = os.pathsep.join((str(tool_bin), env["PATH"]))
    # Plain progress lines, no colours: the assertions read the log.
    env.pop("CLICOLOR_FORCE", None)
    env["NINJA_STATUS"] = "[%f/%t] "
    return env


def relrocheck_wrapper(folder: Path) -> Path:
    """A `relrocheck` program in `folder` that runs the relrocheck under test.

    For build systems that look the command up on PATH (Meson's find_program): the console
    script of the environment may be missing (source checkout) or belong to another install.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "relrocheck"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m relrocheck "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def cmake_dir(env: Mapping[str, str]) -> str:
    """What `relrocheck --cmake-dir` prints: the folder of relrocheckConfig.cmake."""
    result = run([*relrocheck_command(), "--cmake-dir"], env=env)
    result.expect(0)
    folder = result.output.strip()
    assert Path(folder, "relrocheckConfig.cmake").is_file(), folder
    return folder


@dataclass
class Result:
    argv: Sequence[str | os.PathLike[str]]
    returncode: int
    output: str  # stdout and stderr interleaved, as a build log shows them

    def expect(self, code: int) -> Result:
        assert self.returncode == code, (
            f"expected exit {code}, got {self.returncode}: {' '.join(map(str, self.argv))}\n"
            f"{self.output}"
        )
        return self

    def expect_failure(self) -> Result:
        assert self.returncode != 0, (
            f"expected a failure: {' '.join(map(str, self.argv))}\n{self.output}"
        )
        return self


def run(argv: Sequence[str | os.PathLike[str]], cwd: Path | None = None,
        env: Mapping[str, str] | None = None, timeout: float = 300) -> Result:
    proc = subprocess.run(
        [os.fspath(a) for a in argv], cwd=cwd, env=None if env is None else dict(env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False,
    )
    return Result(argv, proc.returncode, proc.stdout)


def names_symbol(log: str, symbol: str) -> bool:
    """The build log names `symbol` as a word (not as part of a longer identifier)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(symbol)}(?![A-Za-z0-9_])", log) is not None


def exported_symbols(library: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if len(line.split()) == 3}


def touch(path: Path) -> None:
    """Make `path` newer than what the last build wrote, even on a file system with 1 s mtimes."""
    time.sleep(1.1)
    os.utime(path)


def find_library(build: Path, name: str = "libdemo.so") -> Path:
    found = sorted(build.rglob(name))
    assert found, f"{name} not found under {build}"
    return found[0]


def accept_commands(log: str) -> list[str]:
    """The commands a failed check offers to accept the change, in the order printed: the
    build system's own first, then relrocheck's (`    or: ...`)."""
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line == "what to do next:")
    commands: list[str] = []
    for line in lines[start + 1:]:
        if line.startswith("      ") and not commands:
            commands.append(line.strip())
        elif line.startswith("    or: ") and commands:
            commands.append(line[len("    or: "):].strip())
        elif commands or not line.startswith("  "):
            break
    assert commands, log
    return commands


def run_pasted(command: str, env: Mapping[str, str]) -> Result:
    """`command` as a reader pastes it into a shell whose current folder is `/`."""
    return run(["sh", "-c", command], cwd=Path("/"), env=env)


def summary_of_grown_demo(build: Path, added_symbol: str) -> dict[str, dict]:
    """Check the relro-summary files of a build whose libdemo.so grew by `added_symbol` and
    whose libother.so did not: verdicts, totals against readelf, the Markdown table. Returns
    the JSON entries by library name, for checks of the build system's own."""
    import json

    import oracle

    doc = json.loads((build / "relro-summary.json").read_text())
    by_name = {lib["name"]: lib for lib in doc["libraries"]}
    assert set(by_name) == {"libdemo.so", "libother.so"} and doc["status"] == "fail"
    assert by_name["libdemo.so"]["status"] == "fail" and by_name["libother.so"]["status"] == "ok"
    for name, lib in by_name.items():
        path = find_library(build, name)
        assert lib["totals"]["relocations"] == oracle.relocation_total(path)
        assert lib["totals"]["relocated_pages"] == oracle.pages_with_relocations(path)
    markdown = (build / "relro-summary.md").read_text()
    assert "2 libraries: 1 ok, 1 failed" in markdown
    assert names_symbol(markdown, added_symbol), markdown
    return by_name
