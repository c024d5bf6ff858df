"""The debuginfod client against a real server: elfutils' `debuginfod`, started on loopback,
indexing a folder that holds the debug file of a stripped library built here.

The oracle is the unstripped build (nm + readelf: relocations per symbol) and the source text
(the line a table is defined on); the build-id comes from `readelf -n`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import oracle
import pytest
from libbuild import build_library, fixture

POINTER_TABLES = fixture("pointer_tables.c")

pytestmark = pytest.mark.skipif(shutil.which("debuginfod") is None,
                                reason="no debuginfod (Debian package debuginfod)")


def line_of(source: Path, text: str) -> int:
    lines = [i for i, line in enumerate(source.read_text().splitlines(), 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def build_id(path: Path) -> str:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    assert m, out
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 2) -> int:
    """HTTP status of a GET, 0 when nothing answers."""
    handler = urllib.request.ProxyHandler({})  # loopback: never through a proxy
    try:
        with urllib.request.build_opener(handler).open(url, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class Server:
    def __init__(self, folder: Path, db: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            ["debuginfod", "-F", "-c", "1", "-t", "0", "-g", "0", "-d", str(db),
             "-p", str(self.port), str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for(self, build: str) -> None:
        """Until /metrics answers and the scan has indexed `build`."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "debuginfod exited"
            if (get(f"{self.url}/metrics") == 200
                    and get(f"{self.url}/buildid/{build}/debuginfo") == 200):
                return
            time.sleep(0.3)
        pytest.fail("debuginfod did not index the debug file within 60 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def stripped(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(stripped library, its unstripped copy, the folder holding its debug file)."""
    lib = build_library(tmp_path / "build", "pt", POINTER_TABLES, flags=["-g"])
    unstripped = tmp_path / "unstripped.so"
    shutil.copy(lib, unstripped)
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(served / "libpt.so.debug")],
                   check=True)
    subprocess.run(["objcopy", "--strip-all", str(lib)], check=True)
    return lib, unstripped, served


@pytest.fixture
def server(stripped, tmp_path: Path) -> Iterator[Server]:
    lib, _unstripped, served = stripped
    s = Server(served, tmp_path / "debuginfod.sqlite")
    try:
        s.wait_for(build_id(lib))
        yield s
    finally:
        s.stop()


def report(lib: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("DEBUGINFOD_") and k.lower() not in
                   ("http_proxy", "https_proxy", "all_proxy")}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "relrocheck", "report", "--format", "json",
                           str(lib), *extra], capture_output=True, text=True, env=environment,
                          timeout=120, check=False)


def symbols_of(run: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    assert run.returncode == 0, run.stderr
    (entry,) = json.loads(run.stdout)["libraries"]
    return {s["name"]: s for s in entry["symbols"]}


def test_a_stripped_library_is_attributed_through_debuginfod_then_from_the_cache(
        stripped, server, tmp_path):
    lib, unstripped, served = stripped
    cache = tmp_path / "cache"
    env = {"DEBUGINFOD_URLS": f"http://127.0.0.1:1/nothing-here {server.url}",
           "DEBUGINFOD_CACHE_PATH": str(cache)}
    expected = oracle.relocations_per_symbol(unstripped)
    names_line = line_of(POINTER_TABLES, "const char *names[40] = {")

    def check(symbols: dict[str, dict]) -> None:
        # file_ops is a local symbol: only the .symtab of the debug file names it.
        for name in ("names", "const_names", "file_ops", "big_table"):
            assert name in symbols and symbols[name]["relocations"] == expected[name] > 0, name
        assert symbols["names"]["source"].endswith(f"pointer_tables.c:{names_line}")

    # Without servers the stripped library has no local symbols and no sources.
    bare = symbols_of(report(lib, {"DEBUGINFOD_CACHE_PATH": str(cache)}))
    assert "file_ops" not in bare and all(s["source"] is None for s in bare.values())

    first = report(lib, env)
    check(symbols_of(first))
    cached = cache / build_id(lib) / "debuginfo"
    assert cached.read_bytes() == (served / "libpt.so.debug").read_bytes()
    assert not [p for p in cached.parent.iterdir() if p.name != "debuginfo"]  # no temporary

    # The cache where elfutils keeps it: $XDG_CACHE_HOME/debuginfod_client, else ~/.cache/.
    for variables, where in (({"XDG_CACHE_HOME": str(tmp_path / "xdg")},
                              tmp_path / "xdg" / "debuginfod_client"),
                             ({"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": ""},
                              tmp_path / "home" / ".cache" / "debuginfod_client")):
        symbols_of(report(lib, {"DEBUGINFOD_URLS": server.url, **variables}))
        assert (where / build_id(lib) / "debuginfo").is_file(), where

    server.stop()
    assert get(f"{server.url}/metrics") == 0
    second = report(lib, env)
    check(symbols_of(second))
    assert second.stderr == ""  # the cache answered: no server was needed
    explain = subprocess.run([sys.executable, "-m", "relrocheck", "explain", str(lib), "names"],
                             capture_output=True, text=True, timeout=120, check=False,
                             env={**os.environ, **env})
    assert explain.returncode == 0, explain.stderr
    assert f"pointer_tables.c:{names_line}" in explain.stdout

    # --no-debuginfod: not even the cache is consulted.
    off = symbols_of(report(lib, env, "--no-debuginfod"))
    assert "file_ops" not in off


def test_a_server_that_is_down_costs_one_warning_never_the_report(stripped, tmp_path):
    lib, _unstripped, _served = stripped
    env = {"DEBUGINFOD_URLS": f"http://127.0.0.1:{free_port()}",
           "DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")}
    run = report(lib, env)
    symbols = symbols_of(run)
    assert "file_ops" not in symbols
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("relrocheck: warning: debuginfod:"), lines
    assert build_id(lib) in lines[0]
    assert not (tmp_path / "cache" / build_id(lib) / "debuginfo").exists()
    # Several libraries, one run: the server that did not answer is not asked again.
    copy = tmp_path / "copy" / "libpt.so"
    copy.parent.mkdir()
    shutil.copy(lib, copy)
    run = report(lib, env, str(copy))
    assert run.returncode == 0 and run.stderr.count("\n") == 1, run.stderr
    assert "not asked again" in run.stderr


def test_an_unknown_build_id_is_no_failure(stripped, server, tmp_path):
    """A 404 is an answer: no warning. Another library, same server."""
    other = build_library(tmp_path / "other", "other", "const char *other_names[] = {\"a\"};")
    subprocess.run(["objcopy", "--strip-all", str(other)], check=True)
    cache = tmp_path / "cache"
    run = report(other, {"DEBUGINFOD_URLS": server.url, "DEBUGINFOD_CACHE_PATH": str(cache)})
    symbols_of(run)
    assert run.stderr == ""


def test_a_build_id_no_server_has_is_not_asked_for_again_for_cache_miss_s(
        stripped, server, tmp_path):
    """elfutils' negative cache: an empty file of mode 000 where the debug file would be,
    honoured for <cache>/cache_miss_s seconds (default 600), written and read by either."""
    other = build_library(tmp_path / "other", "other", "const char *other_names[] = {\"a\"};")
    subprocess.run(["objcopy", "--strip-all", str(other)], check=True)
    cache = tmp_path / "cache"
    run = report(other, {"DEBUGINFOD_URLS": server.url, "DEBUGINFOD_CACHE_PATH": str(cache)})
    assert run.returncode == 0 and run.stderr == ""
    miss = cache / build_id(other) / "debuginfo"
    assert miss.stat().st_size == 0 and stat.S_IMODE(miss.stat().st_mode) == 0
    # The servers are not asked within the window: a dead one would cost a warning.
    dead = {"DEBUGINFOD_URLS": f"http://127.0.0.1:{free_port()}",
            "DEBUGINFOD_CACHE_PATH": str(cache)}
    assert report(other, dead).stderr == ""
    # Once the window is over, they are: the mark is removed and the dead server asked.
    (cache / "cache_miss_s").write_text("0\n")
    late = report(other, dead)
    assert late.returncode == 0 and "relrocheck: warning: debuginfod:" in late.stderr
    assert not miss.exists()  # no answer is no miss: nothing recorded
    # The library with a debug file is still found, the negative mark of another aside.
    lib, _unstripped, _served = stripped
    assert "file_ops" in symbols_of(report(lib, {"DEBUGINFOD_URLS": server.url,
                                                 "DEBUGINFOD_CACHE_PATH": str(cache)}))


@pytest.mark.skipif(shutil.which("debuginfod-find") is None, reason="no debuginfod-find")
def test_a_miss_recorded_by_debuginfod_find_is_honoured(server, tmp_path):
    other = build_library(tmp_path / "other", "other", "const char *other_names[] = {\"a\"};")
    subprocess.run(["objcopy", "--strip-all", str(other)], check=True)
    cache = tmp_path / "cache"
    find = subprocess.run(["debuginfod-find", "debuginfo", build_id(other)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "DEBUGINFOD_URLS": server.url,
                               "DEBUGINFOD_CACHE_PATH": str(cache)})
    assert find.returncode != 0  # the server has no such file
    assert (cache / build_id(other) / "debuginfo").stat().st_size == 0
    dead = {"DEBUGINFOD_URLS": f"http://127.0.0.1:{free_port()}",
            "DEBUGINFOD_CACHE_PATH": str(cache)}
    assert report(other, dead).stderr == ""


def test_a_file_larger_than_debuginfod_maxsize_is_refused(stripped, server, tmp_path):
    lib, _unstripped, served = stripped
    size = (served / "libpt.so.debug").stat().st_size
    run = report(lib, {"DEBUGINFOD_URLS": server.url, "DEBUGINFOD_MAXSIZE": str(size - 1),
                       "DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")})
    assert "file_ops" not in symbols_of(run)
    assert "DEBUGINFOD_MAXSIZE" in run.stderr and run.stderr.count("\n") == 1
    assert not list((tmp_path / "cache").rglob("*debuginfo*"))


def test_a_cached_file_of_another_build_is_refused_and_removed(stripped, tmp_path):
    """What a server sent is checked like a --debug-file: its build-id must be the library's."""
    lib, _unstripped, _served = stripped
    other = build_library(tmp_path / "other", "pt", "int other_table[4] = {1};", flags=["-g"])
    cached = tmp_path / "cache" / build_id(lib) / "debuginfo"
    cached.parent.mkdir(parents=True)
    shutil.copy(other, cached)
    run = report(lib, {"DEBUGINFOD_URLS": f"http://127.0.0.1:{free_port()}",
                       "DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")})
    assert "file_ops" not in symbols_of(run)
    assert run.stderr.count("\n") == 1 and "another build" in run.stderr
    assert build_id(other) in run.stderr and not cached.exists()


def test_a_server_that_never_answers_is_given_up_after_debuginfod_timeout(stripped, tmp_path):
    lib, _unstripped, _served = stripped
    start = time.monotonic()
    symbols_of(report(lib, {"DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")}))
    without_server = time.monotonic() - start
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        run = report(lib, {"DEBUGINFOD_URLS": url, "DEBUGINFOD_TIMEOUT": "1",
                           "DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache")})
        elapsed = time.monotonic() - start
    symbols_of(run)
    assert run.stderr.count("\n") == 1 and "relrocheck: warning: debuginfod:" in run.stderr
    assert elapsed < without_server + 6  # 1 s asked; the default would wait 10 s


def test_a_server_sending_a_byte_now_and_then_is_given_up_after_debuginfod_maxtime(tmp_path):
    """In process: the client alone, against a server that answers 200 and then drips."""
    from relrocheck.debuginfod import fetch_debuginfo

    with socket.socket() as drip:
        drip.bind(("127.0.0.1", 0))
        drip.listen(1)

        def serve() -> None:
            connection, _ = drip.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                for _ in range(60):
                    try:
                        connection.sendall(b"x")
                    except OSError:
                        return
                    time.sleep(0.25)

        threading.Thread(target=serve, daemon=True).start()
        warnings: list[str] = []
        start = time.monotonic()
        found = fetch_debuginfo("ab" * 20, {
            "DEBUGINFOD_URLS": f"http://127.0.0.1:{drip.getsockname()[1]}",
            "DEBUGINFOD_CACHE_PATH": str(tmp_path), "DEBUGINFOD_MAXTIME": "2",
            "DEBUGINFOD_TIMEOUT": "1"}, report=warnings.append)
        elapsed = time.monotonic() - start
    assert found is None and len(warnings) == 1 and "DEBUGINFOD_MAXTIME" in warnings[0]
    assert elapsed < 6  # the drip lasts 15 s
    assert not list(tmp_path.rglob("*"))[1:]  # at most the build-id folder, no file in it
