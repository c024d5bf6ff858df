"""Dynamic initialisation per translation unit: a new global with a constructor in a unit
that already had one adds no .init_array entry; its `_GLOBAL__sub_I_<unit>` code grows.

Sizes come from nm -S, entry counts from readelf -SW.
"""

from __future__ import annotations

from pathlib import Path

import oracle
import pytest
from libbuild import build_library

from relrocheck.analyze import analyze

LOGGER = """
#include <string>
std::string default_pattern = "%v";
#ifdef MORE
const std::string level_names[7] = {"trace", "debug", "info", "warning", "error", "critical",
                                    "off"};
const std::string &level_name(int i) { return level_names[i % 7]; }
#endif
const std::string &pattern() { return default_pattern; }
"""
OTHER = """
#include <string>
std::string other_name = "other";
const std::string &other() { return other_name; }
"""


def _build(tmp: Path, *flags: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "logger.cpp").write_text(LOGGER)
    other = tmp / "other.cpp"
    other.write_text(OTHER)
    return build_library(tmp, "logger", tmp / "logger.cpp", lang="c++",
                         flags=[str(other), *flags])


def _nm_initializers(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in oracle.symbols(path):
        if s["name"].startswith("_GLOBAL__sub_I_") and s["type"] == "FUNC":
            unit = s["name"][len("_GLOBAL__sub_I_"):].removesuffix(".cold")
            out[unit] = out.get(unit, 0) + s["size"]
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("init")
    return _build(base / "before"), _build(base / "after", "-DMORE")


def test_initializer_sizes_per_unit_match_nm(builds):
    for path in builds:
        lib = analyze(str(path))
        assert dict(lib.initializers) == _nm_initializers(path)
        assert set(lib.initializers) == {"logger.cpp", "other.cpp"}


def test_a_new_global_in_a_unit_that_had_one_is_seen_and_named(builds):
    before, after = builds
    entries = [oracle.sections(p)[".init_array"]["size"] for p in builds]
    assert entries[0] == entries[1]  # no new .init_array entry: the count cannot see it
    old, new = analyze(str(before)), analyze(str(after))
    assert new.static_initializers == old.static_initializers
    sizes = _nm_initializers(after)
    assert new.initializers["logger.cpp"] > old.initializers["logger.cpp"]
    assert new.initializers["other.cpp"] == old.initializers["other.cpp"]
    hint = new.symbol("<unattributed in .init_array>").hint
    assert hint is not None and hint.kind == "init_array"
    # The largest unit first, with nm's size.
    assert f"(_GLOBAL__sub_I_*): logger.cpp {sizes['logger.cpp']} B" in hint.advice


def test_initializers_in_the_json_report(builds):
    import json
    import subprocess
    import sys

    doc = json.loads(subprocess.run([sys.executable, "-m", "relrocheck", "report", "--format",
                                     "json", str(builds[1])], capture_output=True, text=True,
                                    check=True).stdout)
    assert doc["libraries"][0]["initializers"] == _nm_initializers(builds[1])
