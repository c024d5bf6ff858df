"""The compiled kernels (kernels/, built into relrocheck._kernels), when the install could
build them.

Each is the twin of a pure-Python function that defines its result, and which runs where
`kernels` is None:

| kernel | twin |
|---|---|
| is_sorted, gap_marks, compress | columns.is_sorted_python, gap_marks_python, compressed_python |
| leading_run | reloctables.leading_run_python |
| classify | the table classifier of targets.address_classifier |
| attribute | attribution.attribute_python |
| page_counts | measure.counts_per_page_python |
| fold_symbols | measure._Measurement._fold_python |
| ascii_names | the general path of elf.ElfFile.names_at |
| target_span, count_text | the Python path of stringtargets.StringTargets.count |
| symbols_json | serialize.symbol_encoder's encode |

Same results, without Python's cost per relocation. Without a C compiler and Python's
headers at install time, or with RELROCHECK_PURE_PYTHON=1 in the environment (to compare
the two, or to rule the kernels out of a bug), `kernels` is None.
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
