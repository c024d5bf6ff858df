"""Readable names for mangled symbols: Itanium C++ (`_Z...`) and Rust (legacy `_ZN...17h<hash>E`
and v0 `_R...`), through binutils' `c++filt`.

Why a subprocess and not Python: a correct Itanium demangler is thousands of lines
(substitutions, templates, lambdas, ABI tags, clones), and libiberty's, behind c++filt, is the
reference every toolchain user already trusts. c++filt's default "auto" style also decodes both
Rust manglings (checked against `c++filt -s rust` on rustc output), so one process serves all.

Cost, measured on libLLVM-15 (6,045 mangled names, Debian 12, 2 cores): c++filt start-up
(loading libbfd) 1.5 ms, demangling 13 ms, 7 ms once each _ZTV/_ZTI pair shares its type
(see _SPECIAL). The caller submits the names and computes hints meanwhile, so the wall-clock
cost is mostly hidden. Without c++filt every name stays undemangled (`None`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from typing import IO

CXXFILT = os.environ.get("CXXFILT", "c++filt")


_PREFIXES = frozenset(("_Z", "_R"))


def is_mangled(name: str) -> bool:
    """Whether a name may be an Itanium C++ or Rust symbol (c++filt decides for sure)."""
    return name[:2] in _PREFIXES and "\n" not in name


# Special names that differ only in their prefix before the same type encoding; c++filt
# prints them as this phrase followed by the type. C++ libraries hold them in pairs (_ZTV and
# _ZTI of each class: 5,400 of libLLVM's 6,045 mangled names), so each type is sent once.
_SPECIAL = {"_ZTV": "vtable for ", "_ZTI": "typeinfo for ", "_ZTS": "typeinfo name for ",
            "_ZTT": "VTT for "}


def _requests(names: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Names to send to c++filt, and (name, sent name) pairs whose text is derived."""
    # One pass, is_mangled inlined: c++filt waits for this list (libLLVM-15: 6,110 names).
    send: list[str] = []
    derived: list[tuple[str, str]] = []
    by_type: dict[str, str] = {}
    prefixes, special = _PREFIXES, _SPECIAL
    for name in dict.fromkeys(names):
        if name[:2] not in prefixes or "\n" in name:
            continue
        if name[:4] in special:
            representative = by_type.setdefault(name[4:], name)
            if representative is not name:  # the names are distinct: another one's type
                derived.append((name, representative))
                continue
        send.append(name)
    return send, derived


class Demangler:
    """One c++filt run: `submit` the names, do other work, collect with `result`.

    c++filt reads its input from a temporary file and writes to another: it runs on its own
    core without waiting for this process. (Feeding it through pipes from a thread was
    slower: the thread needs the GIL for every 512-byte write while the caller computes.)
    Without c++filt, or if it fails, no names are demangled; nothing else changes.
    """

    def __init__(self, program: str | None = None) -> None:
        self._program = program or CXXFILT
        self._names: list[str] = []
        self._derived: list[tuple[str, str]] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    def submit(self, names: Iterable[str]) -> None:
        """Start c++filt on the mangled names among `names`; it runs while the caller goes on."""
        if self._proc is not None:
            return
        self._names, self._derived = _requests(names)
        if not self._names:
            return
        data = ("\n".join(self._names) + "\n").encode("utf-8", "surrogateescape")
        with tempfile.TemporaryFile() as source:
            source.write(data)
            source.seek(0)
            # Kept open until result(): c++filt writes it while the caller works.
            self._output = tempfile.TemporaryFile()  # noqa: SIM115
            try:
                self._proc = subprocess.Popen(
                    [self._program], stdin=source, stdout=self._output,
                    stderr=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C"))
            except OSError:
                self.close()

    def result(self) -> dict[str, str]:
        """Raw name -> demangled name, for the names c++filt changed."""
        proc, output = self._proc, self._output
        if proc is None or output is None:
            return {}
        try:
            if proc.wait() != 0:
                return {}
            output.seek(0)
            decoded = output.read().decode("utf-8", "replace")
        finally:
            self.close()
        lines = decoded.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) != len(self._names):
            # c++filt answers line for line; anything else means we cannot pair them up.
            return {}
        out = {raw: text for raw, text in zip(self._names, lines) if text and text != raw}
        for name, representative in self._derived:
            text = out.get(representative)
            if text is None:
                continue
            phrase = _SPECIAL[representative[:4]]
            if text.startswith(phrase):
                out[name] = _SPECIAL[name[:4]] + text[len(phrase):]
        return out

    def close(self) -> None:
        """Stop c++filt if its result is no longer wanted, and free the temporary file."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if self._output is not None:
            self._output.close()
            self._output = None

    def __enter__(self) -> Demangler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def demangle_names(names: Iterable[str], program: str | None = None) -> Mapping[str, str]:
    """Demangle in one c++filt run: raw name -> readable name, for the names it changed."""
    with Demangler(program) as demangler:
        demangler.submit(names)
        return demangler.result()
