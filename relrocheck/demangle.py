"""Readable names for mangled symbols: Itanium C++ (`_Z...`) and Rust (legacy `_ZN...17h<hash>E`
and v0 `_R...`), through binutils' `c++filt`.

Why a subprocess and not Python: a correct Itanium demangler is thousands of lines
(substitutions, templates, lambdas, ABI tags, clones), and libiberty's, behind c++filt, is the
reference every toolchain user already trusts. c++filt's default "auto" style also decodes both
Rust manglings (checked against `c++filt -s rust` on rustc output), so one process serves all.

Cost, measured on libLLVM-15 (6,045 mangled names, Debian 12, 2 cores): c++filt start-up
(loading libbfd) 1.5 ms, demangling 13 ms, on the other core while the caller computes hints.
This process only picks the names that may be mangled, joins them and pairs the answer lines
with them: a few C-level passes, so that c++filt starts early and the caller's own share stays
a few ms. (Sending each _ZTV/_ZTI type once and deriving the other name's text saved c++filt
4 ms but cost this process 8-10 ms in Python per-name work.) Without c++filt every name stays
undemangled (`None`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from typing import IO

CXXFILT = os.environ.get("CXXFILT", "c++filt")


_PREFIXES = frozenset(("_Z", "_R"))


def is_mangled(name: str) -> bool:
    """Whether a name may be an Itanium C++ or Rust symbol (c++filt decides for sure)."""
    return name[:2] in _PREFIXES and "\n" not in name


def _to_send(names: Iterable[str]) -> tuple[list[str], bytes]:
    """The names that may be mangled, and c++filt's input: one per line."""
    prefixes = _PREFIXES
    mangled = [n for n in names if n[:2] in prefixes]
    text = "\n".join(mangled)
    if text.count("\n") != max(len(mangled) - 1, 0):
        # A name holding a newline would be two lines: c++filt could not answer it alone.
        mangled = [n for n in mangled if "\n" not in n]
        text = "\n".join(mangled)
    return mangled, (text + "\n").encode("utf-8", "surrogateescape")


def _scratch_file() -> IO[bytes]:
    """An anonymous file for c++filt's input or output: in memory where Linux has memfd
    (no file system, and no import of tempfile, a tenth of this module's start-up)."""
    if hasattr(os, "memfd_create"):
        try:
            return os.fdopen(os.memfd_create("relrocheck-c++filt"), "w+b")
        except OSError:
            pass  # a kernel or sandbox without it
    import tempfile

    return tempfile.TemporaryFile()  # closed by the caller


class Demangler:
    """One c++filt run: `submit` the names, do other work, collect with `result`.

    c++filt reads its input from an anonymous file and writes to another: it runs on its own
    core without waiting for this process. (Feeding it through pipes from a thread was
    slower: the thread needs the GIL for every 512-byte write while the caller computes.)
    Without c++filt, or if it fails, no names are demangled; nothing else changes.
    """

    def __init__(self, program: str | None = None) -> None:
        self._program = program or CXXFILT
        self._names: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    def submit(self, names: Iterable[str]) -> None:
        """Start c++filt on the mangled names among `names`; it runs while the caller goes on."""
        if self._proc is not None:
            return
        self._names, data = _to_send(names)
        if not self._names:
            return
        with _scratch_file() as source:
            source.write(data)
            source.seek(0)
            # Kept open until result(): c++filt writes it while the caller works.
            self._output = _scratch_file()
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
        return {raw: text for raw, text in zip(self._names, lines) if text and text != raw}

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
