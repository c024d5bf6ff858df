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


def render_report(fmt: str, libraries: list[Library], root: str, top: int | None,
                  log: Callable[[], str]) -> str:
    return _render(fmt, F.from_report(libraries, root, top), root, log)
