"""`relrocheck verify`: the predicted dirty pages match what the kernel reports once the
library is really loaded (within one page), for libraries built here and system ones; and a
library whose constructor writes more is caught, not hidden."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from libbuild import build_library, fixture, have_cross

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="needs /proc/PID/smaps")

SYSTEM = [Path("/usr/lib/x86_64-linux-gnu/libz.so.1"),
          Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")]

CONSTRUCTOR_WRITES = """
/* A constructor that writes five pages of .data at load: dirt no file can predict. */
#define PAGE 4096
static volatile char journal[5 * PAGE] = {1};
__attribute__((constructor)) static void fill_journal(void)
{
    for (unsigned i = 0; i < sizeof journal; i += PAGE)
        journal[i] = 2;
}
const char *const journal_names[] = {"a", "b", "c"};
"""


def verify(*paths: Path, extra: tuple[str, ...] = ()) -> tuple[int, dict, str]:
    run = subprocess.run([sys.executable, "-m", "relrocheck", "verify", "--format", "json",
                          *extra, *map(str, paths)], capture_output=True, text=True, check=False)
    return run.returncode, json.loads(run.stdout) if run.stdout else {}, run.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    build = tmp_path_factory.mktemp("verify")
    return [
        build_library(build, "pointer_tables", fixture("pointer_tables.c")),
        build_library(build, "hints", fixture("hints.c")),
        build_library(build, "cxx_vtables", fixture("cxx_vtables.cpp"), lang="c++"),
        build_library(build, "cxx_globals", fixture("cxx_globals.cpp"), lang="c++"),
        build_library(build / "now", "pointer_tables", fixture("pointer_tables.c"),
                      flags=["-Wl,-z,now"]),
    ]


def check_within_one_page(document: dict) -> None:
    for lib in document["libraries"]:
        assert abs(lib["measured_pages"] - lib["predicted_pages"]) <= 1, lib
        assert lib["within_tolerance"]
        assert lib["predicted_pages"] >= 1
        # Per mapping, the parts add up to the totals.
        assert sum(m["predicted_pages"] for m in lib["mappings"]) == lib["predicted_pages"]
        assert sum(m["private_dirty_kb"] for m in lib["mappings"]) == lib["private_dirty_kb"]
        assert lib["measured_pages"] * lib["page_size"] == lib["private_dirty_kb"] * 1024


def test_libraries_built_here_match(built):
    code, document, stderr = verify(*built)
    assert code == 0, stderr
    assert len(document["libraries"]) == len(built)
    check_within_one_page(document)


@pytest.mark.parametrize("path", SYSTEM, ids=lambda p: p.name)
def test_system_libraries_match(path):
    if not path.exists():
        pytest.skip(f"no {path}")
    code, document, stderr = verify(path)
    assert code == 0, stderr
    check_within_one_page(document)
    assert not document["libraries"][0]["already_mapped"]


def test_constructor_writes_are_reported_as_a_difference(tmp_path):
    path = build_library(tmp_path, "journal", CONSTRUCTOR_WRITES)
    code, document, _ = verify(path)
    lib = document["libraries"][0]
    assert lib["measured_pages"] - lib["predicted_pages"] >= 4
    assert not lib["within_tolerance"]
    assert code == 1
    text = subprocess.run([sys.executable, "-m", "relrocheck", "verify", str(path)],
                          capture_output=True, text=True, check=False)
    assert "OUTSIDE the tolerance" in text.stdout
    code, _, _ = verify(path, extra=("--tolerance", "10"))
    assert code == 0


def test_library_the_loader_maps_itself_is_flagged():
    libc = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
    if not libc.exists():
        pytest.skip("no libc.so.6 at the Debian path")
    _code, document, stderr = verify(libc)
    lib = document["libraries"][0]
    assert lib["already_mapped"] and lib["notes"], stderr


def test_foreign_architecture_is_refused(tmp_path):
    target = "aarch64-linux-gnu" if platform.machine() != "aarch64" else "x86_64-linux-gnu"
    if not have_cross(target):
        pytest.skip(f"no {target} toolchain")
    path = build_library(tmp_path, "cross", fixture("cross.c"), target=target)
    code, _document, stderr = verify(path)
    assert code == 2
    assert "relrocheck: error:" in stderr and "cannot load" in stderr
    assert "Traceback" not in stderr


def test_help_says_it_runs_the_library():
    run = subprocess.run([sys.executable, "-m", "relrocheck", "verify", "--help"],
                         capture_output=True, text=True, check=True)
    assert "RUNS CODE FROM THE LIBRARY" in run.stdout and "constructors" in run.stdout
    top = subprocess.run([sys.executable, "-m", "relrocheck", "--help"],
                         capture_output=True, text=True, check=True)
    assert "constructors" in top.stdout  # the command list warns as well


CONSTRUCTOR_CRASHES = """
#include <signal.h>
__attribute__((constructor)) static void crash(void) { raise(SIGSEGV); }
int counter = 1;
"""
CONSTRUCTOR_EXITS = """
#include <stdlib.h>
__attribute__((constructor)) static void leave(void) { exit(%d); }
int counter = 1;
"""


@pytest.mark.parametrize("source, reason", [
    (CONSTRUCTOR_CRASHES, "killed by SIGSEGV"),
    (CONSTRUCTOR_EXITS % 0, "ended before it could read its memory map"),
    (CONSTRUCTOR_EXITS % 3, "exit code 3"),
], ids=["crash", "exit-0", "exit-3"])
def test_a_constructor_that_crashes_or_exits_is_one_error_line(tmp_path, source, reason):
    # A space in the folder: the loader is given a link in a temporary folder, and the
    # error must still name the library, not that link.
    path = build_library(tmp_path / "with space", "ctor", source)
    good = build_library(tmp_path, "pointer_tables", fixture("pointer_tables.c"))
    code, document, stderr = verify(path, good)
    assert code == 2
    assert stderr.splitlines() == [stderr.strip()] and "Traceback" not in stderr
    assert stderr.startswith(f"relrocheck: error: {path}: loading failed: ")
    assert reason in stderr
    assert [e["path"] for e in document["errors"]] == [str(path)]
    assert reason in document["errors"][0]["message"]
    assert not document["errors"][0]["message"].startswith(str(path))
    assert [lib["path"] for lib in document["libraries"]] == [str(good)]  # the others go on


CONSTRUCTOR_FORKS = """
/* A constructor that forks a child which outlives the load by far, holding the loader's
   standard output open; its pid goes to the file named by RELRO_PID_FILE. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void spawn(void)
{
    const char *file = getenv("RELRO_PID_FILE");
    pid_t pid = fork();
    if (pid == 0) { sleep(%d); _exit(0); }
    if (file) { FILE *f = fopen(file, "w"); if (f) { fprintf(f, "%%d\\n", (int)pid); fclose(f); } }
}
int counter = 1;
"""
CONSTRUCTOR_WAITS = """
#include <unistd.h>
__attribute__((constructor)) static void wait_long(void) { sleep(%d); }
int counter = 1;
"""


def _alive(pid: int) -> bool:
    """Whether pid runs (a zombie whose parent is gone counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _run_verify(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    import os
    import time
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "relrocheck", "verify", *args],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))
    return proc, time.monotonic() - start


def test_a_constructor_that_forks_is_measured_and_its_child_killed(tmp_path):
    path = build_library(tmp_path, "forks", CONSTRUCTOR_FORKS % 50)
    pid_file = tmp_path / "child.pid"
    proc, seconds = _run_verify("--format", "json", str(path),
                                env={"RELRO_PID_FILE": str(pid_file)})
    assert proc.returncode in (0, 1), proc.stderr
    assert [lib["path"] for lib in json.loads(proc.stdout)["libraries"]] == [str(path)]
    assert seconds < 30  # the load finished at once: no wait for the child's 50 s
    pid = int(pid_file.read_text())
    assert not _alive(pid)


def test_timeout_option_bounds_a_constructor_that_waits(tmp_path):
    path = build_library(tmp_path, "waits", CONSTRUCTOR_WAITS % 50)
    proc, seconds = _run_verify("--timeout", "1", str(path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"relrocheck: error: {path}: loading it did not finish within 1 s "
        "(a constructor that waits? see --timeout)"]
    assert seconds < 30
    for bad in ("0", "-1", "nan", "x", "9" * 5000):
        proc, _ = _run_verify("--timeout", bad, str(path))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, bad
        assert "--timeout" in proc.stderr.splitlines()[-1]


def test_paths_that_are_not_utf8_or_too_long(tmp_path):
    import os
    good = build_library(tmp_path, "pointer_tables", fixture("pointer_tables.c"))
    odd = os.fsencode(tmp_path) + b"/lib\xff\xfe.so"
    os.link(good, odd)
    proc = subprocess.run([sys.executable.encode(), b"-m", b"relrocheck", b"verify",
                           b"--format", b"json", odd], capture_output=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert b"Traceback" not in proc.stderr
    assert len(json.loads(proc.stdout)["libraries"]) == 1  # found its own mappings
    for name in ("a" * 300 + ".so", "a/" * 3000 + "x.so"):
        proc, _ = _run_verify(str(tmp_path / name))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) == 1
        assert "File name too long" in proc.stderr
