"""Where the CMake package (relrocheckConfig.cmake) of this installation lives.

The files are kept at the top-level `cmake/` of the source tree and installed as the data-only
subpackage `relrocheck.cmake` (setuptools `package-dir` maps it to `cmake/`). Asking the import
system for that subpackage gives the right folder for a regular install (site-packages) and for
an editable one (the source tree's `cmake/`) alike, without importing anything.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from relrocheck.errors import RelrocheckError

_CONFIG = "relrocheckConfig.cmake"


def cmake_dir() -> str:
    """Return the absolute folder that holds relrocheckConfig.cmake (for `-Drelrocheck_DIR=`)."""
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec("relrocheck.cmake")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(location) for location in spec.submodule_search_locations)
    here = Path(__file__).resolve().parent
    # Run from a source checkout that was never installed (PYTHONPATH=. python -m relrocheck).
    candidates += [here / "cmake", here.parent / "cmake"]
    for candidate in candidates:
        if (candidate / _CONFIG).is_file():
            return str(candidate.resolve())
    raise RelrocheckError(f"{_CONFIG} is not installed with relrocheck (looked beside {here})")
