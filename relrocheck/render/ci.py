"""The CI formats of `check` and `report`: findings rendered as SARIF, GitHub, Code Quality."""

from __future__ import annotations

import json
from typing import Callable

from relrocheck.gate import GateRun
from relrocheck.model import Library
from relrocheck.render import findings as F


def _render(fmt: str, found: list[F.Finding], root: str, log: Callable[[], str]) -> str:
    if fmt == "sarif":
        from relrocheck.render.sarif import to_sarif

        return json.dumps(to_sarif(found, root), indent=2) + "\n"
    if fmt == "codequality":
        from relrocheck.render.codequality import to_codequality

        return json.dumps(to_codequality(found, root), indent=2) + "\n"
    from relrocheck.render.github import render_github

    return render_github(found, root, log())


def render_check(fmt: str, run: GateRun, libraries: list[Library], root: str,
                 log: Callable[[], str]) -> str:
    """`check` in a CI format; `log` gives the text that follows GitHub's annotations."""
    return _render(fmt, F.from_run(run, libraries, root), root, log)


def check_html(run: GateRun, libraries: list[Library], errors: list[tuple[str, str]]) -> str:
    """The page map of each checked library, with its verdict and violations."""
    from relrocheck.render.check import _status_text
    from relrocheck.render.html import MapEntry, render_html

    by_name = {lib.name: lib for lib in libraries}
    entries = [MapEntry(by_name[o.name], None, [v.message for v in o.violations],
                        f"{'FAIL' if o.failed else 'ok'}: {_status_text(run, o)}")
               for o in run.outcomes if o.name in by_name]
    notes = [f"error: {path}: {message}" for path, message in errors]
    return render_html("relrocheck check: page map", entries, notes)


def render_report(fmt: str, libraries: list[Library], root: str, top: int | None,
                  log: Callable[[], str]) -> str:
    return _render(fmt, F.from_report(libraries, root, top), root, log)
