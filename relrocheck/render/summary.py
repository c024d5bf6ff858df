"""What `relrocheck summary` writes: one table of every judged library, then what failed.

Markdown for a CI step summary (one row per library, then each failing library's problems and
diff as `check --format markdown` shows them), and a JSON-ready dict for tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relrocheck.gate import Outcome
from relrocheck.record import field, record
from relrocheck.render import check as C
from relrocheck.render import diff as D
from relrocheck.render.units import human_bytes

SUMMARY_FORMAT_VERSION = 1


@record
class Judged:
    """One library of a summary: its verdict and current numbers, or why it has none."""

    path: str
    policy: str | None
    baseline_file: str | None
    outcome: Outcome | None = None  # None when the library could not be judged
    totals: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def status(self) -> str:
        if self.outcome is None:
            return "error"
        return "fail" if self.outcome.failed else "ok"


def _counts(judged: list[Judged]) -> dict[str, int]:
    counts = {"ok": 0, "fail": 0, "error": 0}
    for j in judged:
        counts[j.status] += 1
    return counts


def overall(judged: list[Judged]) -> str:
    counts = _counts(judged)
    return "error" if counts["error"] else "fail" if counts["fail"] else "ok"


def render_markdown(judged: list[Judged]) -> str:
    counts = _counts(judged)
    mark = {"ok": "✅", "fail": "❌", "error": "⚠️"}
    head = f"{len(judged)} librar{'y' if len(judged) == 1 else 'ies'}: {counts['ok']} ok"
    if counts["fail"]:
        head += f", {counts['fail']} failed"
    if counts["error"]:
        head += f", {counts['error']} not readable"
    out = [f"## {mark[overall(judged)]} relrocheck: {head}", "",
           "| | library | relocated pages | relocations | writable | problems |",
           "|---|---|--:|--:|--:|---|"]
    for j in judged:
        name = j.outcome.name if j.outcome is not None else j.path
        if j.outcome is None:
            cells = ["", "", "", D.md_escape(j.error or "")]
        else:
            t = j.totals
            problems = "; ".join(D.md_escape(v.message) for v in j.outcome.violations)
            cells = [str(t.get("relocated_pages", "")), str(t.get("relocations", "")),
                     human_bytes(t.get("writable_bytes", 0)), problems]
        out.append(f"| {mark[j.status]} | {D.md_code(name)} | " + " | ".join(cells) + " |")
    out.append("")
    for j in judged:
        if j.outcome is None or not j.outcome.failed:
            continue
        run = C.GateRun(mode="check", baseline_file=j.baseline_file or "",
                        outcomes=(j.outcome,), accept_command="")
        # The accept command is the build's business (it knows its own targets); the
        # summary shows what failed and why.
        section = C.render_markdown(run).split("#### What to do next")[0].rstrip()
        out += [section, ""]
    return "\n".join(out)


def to_dict(judged: list[Judged]) -> dict[str, Any]:
    libraries = []
    for j in judged:
        item: dict[str, Any] = {
            "path": j.path,
            "policy": j.policy,
            "baseline_file": j.baseline_file,
            "status": j.status,
            "error": j.error,
            "totals": dict(j.totals) or None,
        }
        if j.outcome is not None:
            run = C.GateRun(mode="check", baseline_file=j.baseline_file or "",
                            outcomes=(j.outcome,), accept_command="")
            item.update(C.to_dict(run)["libraries"][0])
        libraries.append(item)
    return {"format_version": SUMMARY_FORMAT_VERSION, "status": overall(judged),
            "counts": _counts(judged), "libraries": libraries}
