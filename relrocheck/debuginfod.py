"""A debuginfod client: the debug file of a build-id from the servers of DEBUGINFOD_URLS.

The protocol and the environment are elfutils' (debuginfod-find, GDB), so an existing setup
and cache are shared:
- DEBUGINFOD_URLS: server URLs separated by spaces (http and https; others are skipped),
  asked in order with `GET <url>/buildid/<hex>/debuginfo`;
- DEBUGINFOD_CACHE_PATH: the cache, default `$XDG_CACHE_HOME/debuginfod_client`, else
  `~/.cache/debuginfod_client`; a file is kept as `<cache>/<build-id>/debuginfo` and, once
  there, used without asking any server;
- DEBUGINFOD_TIMEOUT: seconds to wait for a server to answer or to send more data. elfutils
  waits 90 s; a build step should not, so the default here is 10 s;
- DEBUGINFOD_MAXSIZE: the largest file accepted, in bytes (default 4 GiB);
- DEBUGINFOD_MAXTIME: seconds a whole download may take (default 300: a server sending a
  byte now and then must not hold the command forever);
- a build-id no server has is remembered as elfutils does, by an empty file of mode 000 in
  its place, for `<cache>/cache_miss_s` seconds (default 600): a report run after every
  build of a library without published debug info asks the servers once in ten minutes,
  not every time, and GDB or debuginfod-find skip it too.

A download goes to a temporary file in the cache and is renamed into place once complete, so
a reader never sees half a file. Nothing here ever fails the command: a server that is down,
slow, or sends too much costs one warning line on stderr and the source lines.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAXSIZE = 4 << 30
DEFAULT_MAXTIME = 300.0
DEFAULT_CACHE_MISS_S = 600  # elfutils' default for <cache>/cache_miss_s
_CHUNK = 1 << 20
_BUILD_ID = re.compile(r"[0-9a-f]{2,128}")


def warn(message: str) -> None:
    """One line on stderr: debuginfod only ever adds source lines, so it never fails a run."""
    from relrocheck.text import printable

    print(f"relrocheck: warning: debuginfod: {printable(message)}", file=sys.stderr)


def server_urls(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The http(s) servers of DEBUGINFOD_URLS, in order, without a trailing slash."""
    urls = environ.get("DEBUGINFOD_URLS", "").split()
    return [u.rstrip("/") for u in urls if u.startswith(("http://", "https://"))]


def cache_path(environ: Mapping[str, str] = os.environ) -> str:
    """The client cache, where elfutils keeps it."""
    if environ.get("DEBUGINFOD_CACHE_PATH"):
        return environ["DEBUGINFOD_CACHE_PATH"]
    if environ.get("XDG_CACHE_HOME"):
        return os.path.join(environ["XDG_CACHE_HOME"], "debuginfod_client")
    return os.path.join(os.path.expanduser("~"), ".cache", "debuginfod_client")


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def fetch_debuginfo(build_id: str, environ: Mapping[str, str] = os.environ,
                    report: Callable[[str], None] = warn) -> str | None:
    """Path of the debug file for `build_id` (lower-case hex), from the cache or a server.

    None when no server is configured or none has it (a 404 is an answer, not a failure);
    every other failure is reported once through `report` and also gives None.
    """
    if not _BUILD_ID.fullmatch(build_id):
        return None
    cache = cache_path(environ)
    cached = os.path.join(cache, build_id, "debuginfo")
    try:
        found = os.stat(cached)
    except OSError:
        found = None
    if found is not None and found.st_size > 0:
        return cached
    urls = server_urls(environ)
    if not urls:
        return None
    if found is not None and _miss_remembered(cached, found, cache):
        return None
    timeout = _number(environ, "DEBUGINFOD_TIMEOUT", DEFAULT_TIMEOUT)
    maxsize = int(_number(environ, "DEBUGINFOD_MAXSIZE", DEFAULT_MAXSIZE))
    maxtime = _number(environ, "DEBUGINFOD_MAXTIME", DEFAULT_MAXTIME)
    problem = None
    answered = True  # whether every server said it has no such file (404)
    for url in urls:
        if url in _unreachable:
            answered = False  # said once in this run already
            continue
        try:
            if _download(f"{url}/buildid/{build_id}/debuginfo", cached, timeout, maxsize,
                         time.monotonic() + maxtime):
                return cached
        except _Unreachable as exc:
            _unreachable.add(url)
            answered, problem = False, f"{url}: {exc} (not asked again by this run)"
        except _Failed as exc:
            answered, problem = False, f"{url}: {exc}"
    if problem is not None:
        report(f"no debug file for build-id {build_id}: {problem}")
    if answered:
        _remember_miss(cached)
    return None


def _miss_remembered(cached: str, found: os.stat_result, cache: str) -> bool:
    """Whether the empty file at `cached` records a miss younger than cache_miss_s; an
    older one is removed, so that the servers are asked again (as elfutils does)."""
    try:
        with open(os.path.join(cache, "cache_miss_s"), encoding="ascii") as control:
            seconds = int(control.read(32).strip())
    except (OSError, ValueError, UnicodeDecodeError):
        seconds = DEFAULT_CACHE_MISS_S
    if time.time() - found.st_mtime < seconds:
        return True
    try:
        os.unlink(cached)
    except OSError:
        pass
    return False


def _remember_miss(cached: str) -> None:
    """Record that no server has this file: an empty file of mode 000, elfutils' mark."""
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        os.close(os.open(cached, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o000))
    except FileExistsError:
        try:
            os.utime(cached)
        except OSError:
            pass
    except OSError:
        pass  # a cache that cannot be written only costs asking again next time


class _Failed(Exception):
    """A server could not be asked, or its answer is unusable."""


class _Unreachable(_Failed):
    """No answer at all (refused, timed out): a `report` of many libraries must not wait
    for that server once per library."""


_unreachable: set[str] = set()


def _download(url: str, target: str, timeout: float, maxsize: int, deadline: float) -> bool:
    """Store the body of `url` at `target`; False on 404 (the server has no such file)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "relrocheck"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > maxsize:
                raise _Failed(f"{int(length)} bytes, more than DEBUGINFOD_MAXSIZE={maxsize}")
            _store(response, target, maxsize, deadline)
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise _Failed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _Unreachable(str(exc.reason)) from None
    except (TimeoutError, ConnectionError) as exc:
        raise _Unreachable(str(exc) or type(exc).__name__) from None
    except (OSError, ValueError) as exc:  # a malformed answer, the cache not writable
        raise _Failed(str(exc) or type(exc).__name__) from None


def _store(response, target: str, maxsize: int, deadline: float) -> None:
    import tempfile  # here: every report looks for a cached file, few download one

    folder = os.path.dirname(target)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".debuginfo.", suffix=".tmp")
    except OSError as exc:
        raise _Failed(f"cannot write the cache {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            size = 0
            while chunk := response.read1(_CHUNK):  # what has arrived: the deadline holds
                size += len(chunk)
                if size > maxsize:
                    raise _Failed(f"more than DEBUGINFOD_MAXSIZE={maxsize} bytes")
                if time.monotonic() > deadline:
                    raise _Failed("the download took longer than DEBUGINFOD_MAXTIME")
                out.write(chunk)
        if size == 0:
            raise _Failed("an empty answer")
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
