"""What to fix first: pages freed per symbol, the fix plan, and the flag what-ifs.

Every expected number comes from readelf -rW / readelf -SW / nm (tests/oracle.py) on
libraries built here, or from relinking the library with the flag and counting again.
"""

from __future__ import annotations

import bisect
from collections import Counter
from pathlib import Path

import oracle
import pytest
from libbuild import build_library, fixture

from relrocheck.analyze import analyze
from relrocheck.measure import measure

PAGE = 4096


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    build = tmp_path_factory.mktemp("plan")
    return {
        "fix_plan": build_library(build, "fix_plan", fixture("fix_plan.c")),
        "pointer_tables": build_library(build, "pointer_tables", fixture("pointer_tables.c")),
        "hints": build_library(build, "hints", fixture("hints.c")),
    }


def _owner_pages(path: Path) -> dict[str, set[int]]:
    """Owner -> pages its relocation targets touch, from readelf and nm alone.

    An owner is the nm symbol whose [address, address + size) holds the target (in a
    writable section), else the section's remainder "<unattributed in SECTION>", else
    "<none>" for an address in no section.
    """
    sections = oracle.sections(path)
    writable = {name for name, info in sections.items() if "W" in info["flags"]}
    spans = sorted((info["address"], info["address"] + info["size"], name)
                   for name, info in sections.items()
                   if info["address"] and info["size"] and "A" in info["flags"]
                   and not ("T" in info["flags"] and info["type"] == "NOBITS"))
    symbols = sorted((s["address"], s["address"] + s["size"], s["name"])
                     for s in oracle.symbols(path)
                     if s["size"] and s["section"] in writable and s["type"] != "TLS")
    starts = [start for start, _end, _name in symbols]
    section_starts = [start for start, _end, _name in spans]
    pages: dict[str, set[int]] = {}
    for r in oracle.relocations(path):
        i = bisect.bisect_right(starts, r.offset) - 1
        if i >= 0 and symbols[i][0] <= r.offset < symbols[i][1]:
            owner = symbols[i][2]
        else:
            j = bisect.bisect_right(section_starts, r.offset) - 1
            inside = j >= 0 and spans[j][0] <= r.offset < spans[j][1]
            owner = f"<unattributed in {spans[j][2]}>" if inside else "<none>"
        pages.setdefault(owner, set()).add(r.offset // PAGE)
    return pages


def _exclusive(pages: dict[str, set[int]]) -> dict[str, int]:
    owners = Counter(page for touched in pages.values() for page in touched)
    return {name: sum(1 for p in touched if owners[p] == 1) for name, touched in pages.items()}


@pytest.mark.parametrize("name", ["fix_plan", "pointer_tables", "hints"])
def test_pages_exclusive_matches_readelf_and_nm(libs, name):
    path = libs[name]
    pages = _owner_pages(path)
    expected = _exclusive(pages)
    lib = measure(str(path))
    seen = 0
    for s in lib.symbols:
        if not s.relocations:
            assert s.pages_exclusive == 0
            continue
        assert s.name in pages, (s.name, sorted(pages))
        assert s.pages == len(pages[s.name]), s.name
        assert s.pages_exclusive == expected[s.name], (s.name, s.pages_exclusive, expected)
        seen += 1
    assert seen == len([o for o in pages if o != "<none>"])
    # Exclusive pages never add up to more than the library's relocated pages.
    assert sum(s.pages_exclusive for s in lib.symbols) <= oracle.pages_with_relocations(path)
    # The fixture really has shared pages: "pages" summed exceeds the library's total.
    if name == "fix_plan":
        assert sum(s.pages for s in lib.symbols) > oracle.pages_with_relocations(path)


def test_symbols_ranked_by_pages_freed_then_pages_touched(libs):
    lib = measure(str(libs["fix_plan"]))
    keys = [(s.pages_exclusive, s.pages) for s in lib.symbols]
    assert keys == sorted(keys, reverse=True)
    expected = _exclusive(_owner_pages(libs["fix_plan"]))
    # The table alone on its pages comes first; it frees at least two pages.
    assert lib.symbols[0].name == "big_names"
    assert expected["big_names"] >= 2 and lib.symbols[0].pages_exclusive == expected["big_names"]
