"""GitHub Actions workflow commands: `::error file=...,line=...::message` annotations.

GitHub shows at most 10 error and 10 warning annotations per step; the rest are summed up in
one notice line. Every value is escaped as the runner's parser expects (data: `%`, `\\r`,
`\\n`; properties also `:` and `,`), and the text log printed after the annotations never has
a line starting with `::`: a name read from a library cannot issue a workflow command.
"""

from __future__ import annotations

from typing import Iterable

from relrocheck.render.findings import Finding, library_location

MAX_PER_LEVEL = 10  # what GitHub displays per step and level


def escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _command(f: Finding, root: str) -> str:
    if f.source_file is not None and f.line is not None:
        props = f"file={escape_property(f.source_file)},line={f.line}"
    else:
        props = f"file={escape_property(library_location(f, root))}"
    props += f",title={escape_property(f'relrocheck {f.rule_id}')}"
    return f"::{f.level} {props}::{escape_data(f.message)}"


def defuse(text: str) -> str:
    """A text log safe to print between workflow commands: no line starts with `::`."""
    return "".join(f" {line}" if line.startswith("::") else line
                   for line in text.splitlines(keepends=True))


def render_github(findings: Iterable[Finding], root: str, log: str = "") -> str:
    """Annotations (at most MAX_PER_LEVEL per level, a summary for the rest), then `log`."""
    out: list[str] = []
    left = {"error": 0, "warning": 0}
    shown = {"error": 0, "warning": 0}
    for f in findings:
        if shown[f.level] < MAX_PER_LEVEL:
            shown[f.level] += 1
            out.append(_command(f, root) + "\n")
        else:
            left[f.level] += 1
    if left["error"] or left["warning"]:
        out.append(f"::notice title=relrocheck::{left['error']} more error(s) and "
                   f"{left['warning']} more warning(s) not annotated (GitHub shows "
                   f"{MAX_PER_LEVEL} of each per step): see the log below\n")
    return "".join(out) + defuse(log)
