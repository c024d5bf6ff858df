"""What `relrocheck check` prints: each library's verdict, its diff, and what to do next.

Quiet on success (one line per library), complete on failure: what failed, the bloat-o-meter
diff against the baseline, fixes for the worst rows where a hint is known, and the exact
command that accepts the change so that it shows up, and is justified, in the reviewed
baseline diff. Text for build logs, Markdown for a pull-request comment or a CI job summary,
a JSON-ready dict for tools.
"""

from __future__ import annotations

from typing import Any

from relrocheck.gate import GateRun, Outcome, Violation
from relrocheck.model import Library, Symbol
from relrocheck.render import diff as D
from relrocheck.render.units import human_bytes
from relrocheck.text import printable

CHECK_FORMAT_VERSION = 1

# Violations the baseline can accept: growth is a decision to record; a broken limit or hard
# rule is fixed in the library or in the policy, never by updating the baseline.
ACCEPTABLE = ("regression", "new_symbol", "stale_baseline", "missing_baseline")


def _numbers(o: Outcome) -> str:
    if o.diff is None:
        return ""
    t = {x.metric: x.new for x in o.diff.totals}
    return (f"relocated pages {t['relocated_pages']}, relocations {t['relocations']}, "
            f"writable {human_bytes(t['writable_bytes'])}")


def _status_text(run: GateRun, o: Outcome) -> str:
    n = len(o.violations)
    problems = f"{n} problem{'s' if n != 1 else ''}"
    if run.mode == "update":
        if o.failed:
            return f"FAIL, not recorded ({problems})"
        if o.diff is None:
            return f"recorded in {run.baseline_file} (new entry)"
        return f"recorded in {run.baseline_file}" + ("" if o.diff.changed else " (unchanged)")
    if o.failed:
        return f"FAIL ({problems})"
    if o.diff is None:
        return (f"ok without a baseline entry in {run.baseline_file} (regression rules skipped: "
                "the policy says baseline.missing: pass)")
    return f"ok ({_numbers(o)})"


def _next_steps(run: GateRun) -> list[str]:
    """Advice lines (without bullets) for a failed run, most useful first."""
    failed = [o for o in run.outcomes if o.failed]
    steps = []
    for o in failed:
        for name, hint in o.hints:
            steps.append(f"fix {D.label(name, o.labels)} in {o.name}: {hint.advice} "
                         f"[{hint.kind}]")
    kinds = {v.kind for o in failed for v in o.violations}
    if run.mode == "update":
        steps.append("the baseline records growth, never a broken limit or hard rule: fix the "
                     "library, or change the policy; nothing was written")
        return steps
    if kinds & {"limit", "rule"}:
        steps.append("limits and hard rules are not accepted by the baseline: fix the library, "
                     "or change the policy")
    if kinds == {"missing_baseline"}:
        steps.append(f"record the baseline (then commit {run.baseline_file}):")
    elif kinds & set(ACCEPTABLE):
        steps.append("if the change is intended, accept it; the new numbers then show up, for "
                     "review, in the diff of the baseline file:")
    return steps


def _stale(run: GateRun) -> bool:
    """A passing check whose numbers shrank: the baseline still allows the old ones."""
    return run.mode == "check" and not run.failed and any(
        o.diff is not None and o.diff.shrank for o in run.outcomes)


def _shows_accept(run: GateRun) -> bool:
    """Whether the accept command is offered: for growth the baseline can record, or to lock
    in a shrink; never when a limit or hard rule failed alone."""
    return run.mode == "check" and (_stale(run) or any(
        v.kind in ACCEPTABLE for o in run.outcomes for v in o.violations))


def _shows_diff(run: GateRun, o: Outcome) -> bool:
    return o.diff is not None and o.diff.changed and (
        o.failed or run.mode == "update" or o.diff.shrank)


def _command_lines(run: GateRun) -> list[str]:
    """The accept command, one line each when a build system gave its own before relrocheck's;
    the alternatives are told apart so that nobody runs both."""
    commands = run.accept_command.splitlines()
    lines = [f"      {printable(commands[0])}\n"]
    lines += [f"    or: {printable(c)}\n" for c in commands[1:]]
    return lines


def render_text(run: GateRun, top: int | None = D.DEFAULT_TOP) -> str:
    out: list[str] = []
    for o in run.outcomes:
        out.append(printable(f"relrocheck: {o.name}: {_status_text(run, o)}") + "\n")
        out.extend(f"  note: {printable(n)}\n" for n in o.notes)
        for v in o.violations:
            out.append(f"  - {printable(v.message)}\n")
        if _shows_diff(run, o):
            assert o.diff is not None
            label = "against the baseline" if run.mode == "check" else "against the old entry"
            out.append(f"  {label}:\n")
            out.append(D.render_text(o.diff, o.labels, top, indent="    "))
    if run.failed:
        out.append("\nwhat to do next:\n")
        out.extend(f"  - {line}\n" for line in _next_steps(run))
        if _shows_accept(run):
            out.extend(_command_lines(run))
    elif _stale(run):
        out.append("\nthe baseline is stale: the numbers shrank, but the baseline still allows the "
                   "old ones; lock in the gain with:\n")
        out.extend(_command_lines(run))
    return "".join(out)


def _md_message(text: str) -> str:
    return D.md_escape(printable(text).replace(" -> ", " → "))


def _unchanged(run: GateRun, o: Outcome) -> bool:
    """A passing library whose numbers did not move: one line in a folded list suffices."""
    return not o.failed and o.diff is not None and not o.diff.changed and run.mode == "check"


def render_markdown(run: GateRun, top: int | None = D.DEFAULT_TOP,
                    errors: list[tuple[str, str]] | None = None) -> str:
    out: list[str] = []
    for path, message in errors or ():
        out += [f"### ⛔ {D.md_code(printable(path))}: error, not checked", "",
                f"- {_md_message(printable(message))}", ""]
    quiet = [o for o in run.outcomes if _unchanged(run, o)]
    for o in run.outcomes:
        if o in quiet:
            continue
        mark = "❌" if o.failed else "✅"
        out += [f"### {mark} {D.md_code(printable(o.name))}: "
                f"{D.md_escape(printable(_status_text(run, o)))}", ""]
        if o.notes:
            out.extend(f"> {_md_message(printable(n))}" for n in o.notes)
            out.append("")
        if o.violations:
            out.extend(f"- {_md_message(v.message)}" for v in o.violations)
            out.append("")
        if _shows_diff(run, o):
            assert o.diff is not None
            out.append(D.render_markdown(o.diff, o.labels, top))
    if quiet:
        n = len(quiet)
        out += ["<details>", f"<summary>✅ {n} unchanged librar{'ies' if n != 1 else 'y'}"
                "</summary>", ""]
        out.extend(f"- {D.md_code(o.name)}: {D.md_escape(_status_text(run, o))}" for o in quiet)
        out += ["", "</details>", ""]
    if run.failed or _stale(run):
        out += ["#### What to do next", ""]
        steps = _next_steps(run) if run.failed else [
            "the baseline is stale: the numbers shrank; lock in the gain:"]
        out.extend(f"- {_md_message(s)}" for s in steps)
        if _shows_accept(run):
            out += ["", "```sh", printable(run.accept_command), "```"]
        out.append("")
    return "\n".join(out)


def _violation_dict(v: Violation, symbols: dict[str, Symbol]) -> dict[str, Any]:
    sym = symbols.get(v.symbol) if v.symbol else None
    return {"kind": v.kind, "metric": v.metric, "message": v.message, "symbol": v.symbol,
            "old": v.old, "new": v.new, "limit": v.limit,
            "source": sym.source if sym is not None else None,
            "hint": sym.hint.kind if sym is not None and sym.hint is not None else None}


def to_dict(run: GateRun, top: int | None = None, libraries: list[Library] | None = None,
            errors: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The JSON of `check` (relrocheck/schemas/check.schema.json); status `error` when an
    input could not be read, whatever the others' verdict: nothing complete was judged."""
    by_name = {lib.name: {s.name: s for s in lib.symbols} for lib in libraries or ()}
    return {
        "format_version": CHECK_FORMAT_VERSION,
        "mode": run.mode,
        "status": "error" if errors else ("fail" if run.failed else "ok"),
        "baseline_file": run.baseline_file,
        "errors": [{"path": path, "message": message} for path, message in errors or ()],
        "libraries": [{
            "name": o.name,
            "path": o.path,
            "status": "fail" if o.failed else "ok",
            "notes": list(o.notes),
            "violations": [_violation_dict(v, by_name.get(o.name, {})) for v in o.violations],
            "diff": None if o.diff is None else D.diff_to_dict(o.diff, o.labels, top),
            "hints": [{"symbol": name, "kind": h.kind, "advice": h.advice} for name, h in o.hints],
        } for o in run.outcomes],
        "next_steps": _next_steps(run) if run.failed else [],
        "accept_command": run.accept_command if _shows_accept(run) else None,
    }
