"""Findings: what the CI formats (SARIF, GitHub annotations, GitLab Code Quality) report.

One finding per violation of `check`, or per costly symbol with a fix hint of `report`, each
placed on the declaration's source line (DWARF `Symbol.source`, "file:line") when the library
has debug info, else on the library file. Pure: the renderers only format these.
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Optional

from relrocheck.gate import GateRun, Violation
from relrocheck.model import Library, Symbol, labelled
from relrocheck.record import record
from relrocheck.text import printable

# Violation kinds that are named by their kind alone; the others by kind/metric.
_SINGLE = ("new_symbol", "stale_baseline", "missing_baseline")


@record
class Finding:
    rule_id: str  # a hint kind (hints.HINT_KINDS), else the violation: "rule/textrel", ...
    level: str  # error | warning
    message: str  # one line, printable
    library: str  # the library's path as given
    library_name: str
    symbol: Optional[str] = None
    source_file: Optional[str] = None  # relative to the source root when inside it
    line: Optional[int] = None
    violation: Optional[str] = None  # the violation kind, None for a report's hint
    hint_kind: Optional[str] = None
    metric: Optional[str] = None  # the violation's metric


def split_source(source: str | None) -> tuple[str | None, int | None]:
    """("file", line) of a "file:line" source, (None, None) when there is none."""
    if not source:
        return None, None
    path, _, line = source.rpartition(":")
    if not path or not line.isdigit() or int(line) < 1:
        return None, None
    return path, int(line)


def relative_to(path: str, root: str) -> str:
    """`path` relative to `root` when it lies inside it (as code scanning wants), else as is."""
    absolute = os.path.normpath(os.path.join(root, path))
    root = os.path.normpath(os.path.abspath(root))
    if absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep):
        return os.path.relpath(absolute, root)
    return path


def _violation_rule(v: Violation, hint_kind: str | None) -> str:
    if hint_kind is not None:
        return hint_kind
    return v.kind if v.kind in _SINGLE else f"{v.kind}/{v.metric}"


def _place(sym: Symbol | None, root: str) -> tuple[str | None, int | None]:
    path, line = split_source(sym.source if sym is not None else None)
    return (relative_to(path, root), line) if path is not None else (None, None)


def from_run(run: GateRun, libraries: Iterable[Library], root: str) -> list[Finding]:
    """One finding per violation of each library in a run of `check`."""
    by_name: Mapping[str, Library] = {lib.name: lib for lib in libraries}
    out = []
    for o in run.outcomes:
        lib = by_name.get(o.name)
        symbols = {s.name: s for s in lib.symbols} if lib is not None else {}
        for v in o.violations:
            sym = symbols.get(v.symbol) if v.symbol else None
            hint = sym.hint if sym is not None else None
            path, line = _place(sym, root)
            message = f"{o.name}: {v.message}"
            if hint is not None:
                message += f". Fix: {hint.advice}"
            out.append(Finding(_violation_rule(v, hint.kind if hint else None), "error",
                               printable(message), o.path, o.name, v.symbol, path, line,
                               v.kind, hint.kind if hint else None, v.metric))
        # A costly new symbol the policy lets pass (allowlisted, or new_symbols: pass) is
        # still worth a look in review: a warning.
        judged = {v.symbol for v in o.violations if v.symbol}
        for c in o.diff.symbols if o.diff is not None else ():
            sym = symbols.get(c.name)
            if c.status != "added" or not c.new_relocations or c.name in judged or sym is None \
                    or sym.unattributed:
                continue
            path, line = _place(sym, root)
            message = (f"{o.name}: new symbol {labelled(sym.name, sym.demangled)} with "
                       f"{sym.relocations} relocations in {sym.section}")
            if sym.hint is not None:
                message += f". Fix: {sym.hint.advice}"
            out.append(Finding(sym.hint.kind if sym.hint else "new_symbol", "warning",
                               printable(message), o.path, o.name, sym.name, path, line, None,
                               sym.hint.kind if sym.hint else None, "symbol"))
    return out


def from_report(libraries: Iterable[Library], root: str, top: int | None) -> list[Finding]:
    """One finding (a warning) per costly symbol with a fix hint, the `top` costliest each."""
    out = []
    for lib in libraries:
        costly = [s for s in lib.symbols if s.hint is not None and s.relocations]
        for sym in costly if top is None else costly[:top]:
            assert sym.hint is not None
            path, line = _place(sym, root)
            message = (f"{lib.name}: {labelled(sym.name, sym.demangled)} costs {sym.pages} "
                       f"relocated page(s), {sym.relocations} relocations in {sym.section}. "
                       f"Fix: {sym.hint.advice}")
            out.append(Finding(sym.hint.kind, "warning", printable(message), lib.path,
                               lib.name, sym.name, path, line, None, sym.hint.kind))
    return out


def library_location(f: Finding, root: str) -> str:
    """The library file, relative to the source root when inside it (printable: a file name
    may hold anything)."""
    return printable(relative_to(f.library, root))
