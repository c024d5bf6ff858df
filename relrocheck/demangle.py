"""Readable names for mangled symbols: Itanium C++ (`_Z...`) and Rust (legacy `_ZN...17h<hash>E`
and v0 `_R...`), through binutils' `c++filt`.

Why a subprocess and not Python: a correct Itanium demangler is thousands of lines
(substitutions, templates, lambdas, ABI tags, clones), and libiberty's, behind c++filt, is the
reference every toolchain user already trusts. c++filt's default "auto" style also decodes both
Rust manglings (checked against `c++filt -s rust` on rustc output), so one process serves all.

Cost, measured on libLLVM-15 (6,045 mangled names, Debian 12, 2 cores): c++filt start-up
(loading libbfd) 5-10 ms, demangling 10-15 ms. `Demangler` therefore starts the process
before the library is measured and feeds it from a thread, so start-up and most of the work
overlap the caller's own work. Without c++filt every name stays undemangled (`None`).
"""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Iterable, Mapping, Optional

CXXFILT = os.environ.get("CXXFILT", "c++filt")


def is_mangled(name: str) -> bool:
    """Whether a name may be an Itanium C++ or Rust symbol (c++filt decides for sure)."""
    return name.startswith(("_Z", "_R")) and "\n" not in name


# Special names that differ only in their prefix before the same type encoding; c++filt
# prints them as this phrase followed by the type. C++ libraries hold them in pairs (_ZTV and
# _ZTI of each class: 5,400 of libLLVM's 6,045 mangled names), so each type is sent once.
_SPECIAL = {"_ZTV": "vtable for ", "_ZTI": "typeinfo for ", "_ZTS": "typeinfo name for ",
            "_ZTT": "VTT for "}


def _requests(names: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Names to send to c++filt, and (name, sent name) pairs whose text is derived."""
    send: list[str] = []
    derived: list[tuple[str, str]] = []
    by_type: dict[str, str] = {}
    seen: set[str] = set()
    for name in names:
        if name in seen or not is_mangled(name):
            continue
        seen.add(name)
        if name[:4] in _SPECIAL and len(name) > 4:
            representative = by_type.setdefault(name[4:], name)
            if representative != name:
                derived.append((name, representative))
                continue
        send.append(name)
    return send, derived


class Demangler:
    """One c++filt process: start it early, `submit` the names once, collect with `result`.

    A Demangler that could not start its process, or whose process fails, returns no names;
    the caller's report is then the same, only with raw names.
    """

    def __init__(self, program: Optional[str] = None) -> None:
        self._names: list[str] = []
        self._derived: list[tuple[str, str]] = []
        self._output: Optional[bytes] = None
        self._thread: Optional[threading.Thread] = None
        try:
            self._proc: Optional[subprocess.Popen[bytes]] = subprocess.Popen(
                [program or CXXFILT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C"))
        except OSError:
            self._proc = None

    def submit(self, names: Iterable[str]) -> None:
        """Hand the names to c++filt; demangling runs while the caller goes on."""
        if self._proc is None or self._thread is not None:
            return
        self._names, self._derived = _requests(names)
        if not self._names:
            self.close()
            return
        data = ("\n".join(self._names) + "\n").encode("utf-8", "surrogateescape")
        # communicate() writes and reads at once: c++filt's output would fill the pipe and
        # block it long before it has read 300 KB of input.
        self._thread = threading.Thread(target=self._communicate, args=(data,), daemon=True)
        self._thread.start()

    def _communicate(self, data: bytes) -> None:
        assert self._proc is not None
        try:
            out, _ = self._proc.communicate(data)
            if self._proc.returncode == 0:
                self._output = out
        except OSError:
            self._output = None

    def result(self) -> dict[str, str]:
        """Raw name -> demangled name, for the names c++filt changed."""
        if self._thread is None:
            self.close()
            return {}
        self._thread.join()
        self._thread = None
        if self._output is None:
            return {}
        lines = self._output.decode("utf-8", "replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) != len(self._names):
            # c++filt answers line for line; anything else means we cannot pair them up.
            return {}
        out = {raw: text for raw, text in zip(self._names, lines) if text and text != raw}
        for name, representative in self._derived:
            text = out.get(representative)
            phrase = _SPECIAL[representative[:4]]
            if text is not None and text.startswith(phrase):
                out[name] = _SPECIAL[name[:4]] + text[len(phrase):]
        return out

    def close(self) -> None:
        """Stop the process if it was never given work (a C library, or an error)."""
        proc = self._proc
        if proc is None or self._thread is not None:
            return
        self._proc = None
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> "Demangler":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.close()


def demangle_names(names: Iterable[str], program: Optional[str] = None) -> Mapping[str, str]:
    """Demangle in one c++filt run: raw name -> readable name, for the names it changed."""
    with Demangler(program) as demangler:
        demangler.submit(names)
        return demangler.result()
