"""The compiled kernels (kernels/), when the install could build them.

They are twins of pure-Python functions (columns.is_sorted, columns.gap_marks,
reloctables.leading_run, attribution.attribute, the string-target count): same results,
without Python's cost per relocation. Without a C compiler at install time, or with
RELROCHECK_PURE_PYTHON=1 in the environment (to compare the two, or to rule the kernels
out of a bug), `kernels` is None and the pure-Python versions run.
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("RELROCHECK_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from relrocheck import _kernels  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _kernels


kernels = _load()
