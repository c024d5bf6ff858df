"""GitLab Code Quality report: a JSON array of issues, shown in the merge request.

Each issue has description, check_name, fingerprint (stable for the same finding, so GitLab
tells new findings from old ones), severity, and location.path + location.lines.begin: the
declaration's source line when the library has debug info, else line 1 of the library file.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from relrocheck.render.findings import Finding, library_location

_SEVERITY = {"error": "major", "warning": "minor"}


def to_codequality(findings: Iterable[Finding], root: str) -> list[dict[str, Any]]:
    out = []
    for f in findings:
        if f.source_file is not None and f.line is not None:
            path, line = f.source_file, f.line
        else:
            path, line = library_location(f, root), 1
        key = "\0".join((f.library_name, f.rule_id, f.symbol or "", f.violation or "",
                         f.metric or ""))
        out.append({
            "description": f.message,
            "check_name": f.rule_id,
            "fingerprint": hashlib.sha256(key.encode("utf-8", "replace")).hexdigest(),
            "severity": _SEVERITY[f.level],
            "location": {"path": path, "lines": {"begin": line}},
        })
    return out
