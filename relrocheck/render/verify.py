"""`relrocheck verify`: predicted against measured dirty pages, as text or a JSON-ready dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relrocheck.text import printable
from relrocheck.verify import Verification

VERIFY_FORMAT_VERSION = 1


def _verdict(r: Verification, tolerance: int) -> str:
    if r.difference == 0:
        return "match"
    direction = "more" if r.difference > 0 else "fewer"
    within = "within" if abs(r.difference) <= tolerance else "OUTSIDE"
    return f"{abs(r.difference)} {direction} than predicted, {within} the tolerance of {tolerance}"


def render_text(results: Sequence[Verification], tolerance: int) -> str:
    out: list[str] = []
    add = out.append
    for r in results:
        head = r.name if r.name == r.path else f"{r.name} ({r.path})"
        add(printable(head))
        add(f"  predicted {r.predicted_pages} pages ({r.relocated_pages} relocated), measured "
            f"{r.measured_pages} ({r.private_dirty_kb} kB Private_Dirty): "
            f"{_verdict(r, tolerance)}")
        for note in r.notes:
            add(f"  note: {note}")
        add(f"    {'addresses (as linked)':<27} {'perms':<6} {'predicted':>9} {'measured':>9}")
        for m in r.mappings:
            span = f"{m.start:#x}-{m.end:#x}"
            add(f"    {span:<27} {m.permissions:<6} {m.predicted_pages:>9} {m.measured_pages:>9}")
        add("")
    return "\n".join(out)


def to_dict(results: Sequence[Verification], errors: Sequence[tuple[str, str]],
            tolerance: int) -> dict[str, Any]:
    return {
        "format_version": VERIFY_FORMAT_VERSION,
        "tolerance": tolerance,
        "libraries": [{
            "path": r.path,
            "name": r.name,
            "page_size": r.page_size,
            "predicted_pages": r.predicted_pages,
            "relocated_pages": r.relocated_pages,
            "measured_pages": r.measured_pages,
            "private_dirty_kb": r.private_dirty_kb,
            "difference": r.difference,
            "within_tolerance": abs(r.difference) <= tolerance,
            "already_mapped": r.already_mapped,
            "notes": list(r.notes),
            "mappings": [{
                "start": m.start,
                "end": m.end,
                "permissions": m.permissions,
                "file_offset": m.file_offset,
                "predicted_pages": m.predicted_pages,
                "measured_pages": m.measured_pages,
                "private_dirty_kb": m.private_dirty_kb,
            } for m in r.mappings],
        } for r in results],
        "errors": [{"path": path, "message": message} for path, message in errors],
    }
