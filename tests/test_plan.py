"""What to fix first: pages freed per symbol, the fix plan, and the flag what-ifs.

Every expected number comes from readelf -rW / readelf -SW / nm (tests/oracle.py) on
libraries built here, or from relinking the library with the flag and counting again.
"""

from __future__ import annotations

from pathlib import Path

import oracle
import pytest
from libbuild import build_library, fixture

from relrocheck.analyze import analyze
from relrocheck.measure import measure

PAGE = 4096
LIBSTDCXX = Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    build = tmp_path_factory.mktemp("plan")
    return {
        "fix_plan": build_library(build, "fix_plan", fixture("fix_plan.c")),
        "pointer_tables": build_library(build, "pointer_tables", fixture("pointer_tables.c")),
        "hints": build_library(build, "hints", fixture("hints.c")),
    }


_owner_pages = oracle.owner_pages
_exclusive = oracle.exclusive_pages


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


def _zero_filled_pages(path: Path) -> set[int]:
    """The page .data shares with .bss (zero-filled by the loader), from readelf -lW."""
    out = set()
    for seg in oracle.segments(path):
        if seg["type"] == "LOAD" and "W" in seg["flags"] and seg["memory_size"] > seg["file_size"]:
            end = seg["address"] + seg["file_size"]
            if end % PAGE:
                out.add(end // PAGE)
    return out


@pytest.mark.parametrize("name", ["fix_plan", "pointer_tables"])
def test_fix_plan_running_total_is_what_readelf_says_those_symbols_free(libs, name):
    from relrocheck.plan import fix_plan

    path = libs[name]
    lib = analyze(str(path))
    plan = fix_plan(lib)
    pages = _owner_pages(path)
    zero = _zero_filled_pages(path)
    owners: dict[int, set[str]] = {}
    for owner, touched in pages.items():
        for page in touched:
            owners.setdefault(page, set()).add(owner)

    def freed_by(fixed: set[str]) -> int:
        # Pages every one of whose relocated words belongs to a fixed symbol.
        return len({p for p, who in owners.items() if who <= fixed and p not in zero})

    fixed: set[str] = set()
    for step in plan.steps:
        fixed.add(step.symbol)
        assert step.total_freed == freed_by(fixed), (step, sorted(fixed))
        assert lib.symbol(step.symbol).hint is not None
    # Fixing every symbol whose hint removes its relocations frees no more than the plan.
    from relrocheck.hints import REMOVING_KINDS

    removable = {s.name for s in lib.symbols if s.hint and s.hint.kind in REMOVING_KINDS}
    assert freed_by(removable) == plan.freed_pages
    if name == "fix_plan":
        assert plan.freed_pages >= 3  # big_names' own pages and the small tables' page
    assert plan.relocated_pages == oracle.pages_with_relocations(path)
    if not plan.steps:
        assert plan.summary().startswith(f"no fix frees any of the {plan.relocated_pages}")
        return
    assert f"frees {plan.freed_pages} of {plan.relocated_pages} relocated pages" in plan.summary()
    kib = plan.freed_pages * PAGE / 1024
    assert f"= {kib:.1f} KiB per process" in plan.summary()


def test_fix_plan_in_text_and_json_report(libs):
    import json
    import subprocess
    import sys

    path = str(libs["fix_plan"])
    text = subprocess.run([sys.executable, "-m", "relrocheck", "report", path],
                          capture_output=True, text=True, check=True).stdout
    doc = json.loads(subprocess.run([sys.executable, "-m", "relrocheck", "report", "--format",
                                     "json", path], capture_output=True, text=True,
                                    check=True).stdout)
    plan = doc["libraries"][0]["fix_plan"]
    assert plan["steps"][0]["symbol"] == "big_names"
    assert plan["summary"] in text
    assert "Fix first" in text and "1. big_names" in text
    flags = [w["flag"] for w in doc["libraries"][0]["what_ifs"]]
    assert flags == ["-Wl,-Bsymbolic-functions", "-Wl,-Bsymbolic",
                     "-Wl,-z,pack-relative-relocs"]


# -- the what-ifs, each checked by relinking with the flag -------------------------------------


def _symbolic_types(path: Path) -> int:
    """Symbolic relocations (a symbol lookup, not a PLT slot), from readelf -rW."""
    return sum(1 for r in oracle.relocations(path)
               if r.symbol is not None and "JUMP_SLOT" not in r.type
               and "RELATIVE" not in r.type)


def _jump_slots(path: Path) -> int:
    return sum(1 for r in oracle.relocations(path) if "JUMP_SLOT" in r.type)


def _relative(path: Path) -> int:
    return sum(1 for r in oracle.relocations(path) if "RELATIVE" in r.type)


@pytest.mark.parametrize("flag", ["-Wl,-Bsymbolic-functions", "-Wl,-Bsymbolic"])
def test_bsymbolic_what_if_matches_the_relinked_library(libs, tmp_path, flag):
    from relrocheck.plan import what_ifs

    before = libs["fix_plan"]
    prediction = {w.flag: w for w in what_ifs(measure(str(before)))}[flag]
    after = build_library(tmp_path, "fix_plan", fixture("fix_plan.c"), flags=[flag])
    # Every bound relocation left the symbolic ones; each became RELATIVE or disappeared.
    assert _symbolic_types(after) == _symbolic_types(before) - prediction.bound
    grown = _relative(after) - _relative(before)
    assert 0 <= grown <= prediction.bound
    assert _jump_slots(after) == _jump_slots(before) - prediction.plt_removed
    assert (oracle.relocation_total(before) - oracle.relocation_total(after)
            >= prediction.relocations_removed_at_least)
    # The pages are not saved.
    assert oracle.pages_with_relocations(after) == prediction.pages_stay
    assert prediction.bound > 0 and str(prediction.bound) in prediction.advice


def test_bsymbolic_functions_leaves_data_references(libs):
    from relrocheck.plan import what_ifs

    flags = {w.flag: w for w in what_ifs(measure(str(libs["fix_plan"])))}
    # api_level (an exported int) is referenced from data and through the GOT.
    assert flags["-Wl,-Bsymbolic"].bound > flags["-Wl,-Bsymbolic-functions"].bound


def test_relr_what_if_matches_the_relinked_library(libs, tmp_path):
    from relrocheck.plan import what_ifs

    before = libs["fix_plan"]
    prediction = {w.flag: w for w in what_ifs(measure(str(before)))}.get(
        "-Wl,-z,pack-relative-relocs")
    assert prediction is not None
    try:
        after = build_library(tmp_path, "fix_plan", fixture("fix_plan.c"),
                              flags=["-Wl,-z,pack-relative-relocs"])
    except Exception as exc:  # an older linker
        pytest.skip(f"the linker has no -z pack-relative-relocs: {exc}")
    if ".relr.dyn" not in oracle.sections(after):
        pytest.skip("the linker accepted -z pack-relative-relocs but wrote no RELR table")
    shrink = oracle.sections(before)[".rela.dyn"]["size"] - oracle.sections(after)[".rela.dyn"]["size"]
    assert shrink == prediction.table_shrink_bytes
    assert oracle.pages_with_relocations(after) == prediction.pages_stay
    assert oracle.relocation_total(after) == oracle.relocation_total(before)


def _all_candidates_sorted(lib):
    from relrocheck.hints import REMOVING_KINDS

    removing = [s for s in lib.symbols
                if s.hint is not None and s.hint.kind in REMOVING_KINDS and s.page_addresses]
    return sorted(removing, key=lambda s: (-s.pages_exclusive, -s.pages, -s.relocations, s.name))


@pytest.mark.parametrize("limit", [1, 2, 3, 256])
def test_plan_candidates_are_the_first_of_the_ranking(libs, monkeypatch, limit):
    # The plan reads the ranked symbols only down to its last candidate; they are those a
    # sort of every candidate would keep, in that order (ties at the cut included).
    from relrocheck import plan

    monkeypatch.setattr(plan, "_CANDIDATES", limit)
    paths = [*libs.values(), *(p for p in (LIBSTDCXX,) if p.exists())]
    for path in paths:
        lib = analyze(str(path))
        assert plan._candidates(lib.symbols) == _all_candidates_sorted(lib)[:limit], path


@pytest.mark.parametrize("target", ["mipsel-linux-gnu", "mips64el-linux-gnuabi64"])
def test_relr_what_if_on_mips_counts_records_not_got_entries(tmp_path, target):
    """The MIPS GOT's local entries are relative writes without records: RELR packs only the
    records, and the relinked .rel.dyn shrinks by exactly those."""
    from libbuild import have_cross

    from relrocheck.plan import what_ifs

    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    before = build_library(tmp_path / "before", "cross", fixture("cross.c"), target=target)
    predictions = {w.flag: w for w in what_ifs(measure(str(before)))}
    prediction = predictions["-Wl,-z,pack-relative-relocs"]
    after = build_library(tmp_path / "after", "cross", fixture("cross.c"), target=target,
                          flags=["-Wl,--pack-dyn-relocs=relr"])
    assert ".relr.dyn" in oracle.sections(after)
    shrink = (oracle.sections(before)[".rel.dyn"]["size"]
              - oracle.sections(after)[".rel.dyn"]["size"])
    assert shrink == prediction.table_shrink_bytes
    records = sum(r.type == "R_MIPS_REL32" and r.symbol is None for r in oracle.relocations(before))
    assert f"RELR packs the {records} RELATIVE entries of .rel.dyn" in prediction.advice


def test_relr_what_if_of_a_file_without_section_headers_names_its_table_by_tag(libs, tmp_path):
    """sstrip'ed: the table is DT_RELA, still RELA-sized; a RELR-packed one has nothing left
    to pack."""
    from libbuild import sstrip_copy

    from relrocheck.plan import what_ifs

    stripped = sstrip_copy(libs["fix_plan"], tmp_path / "sstripped.so")
    plain = {w.flag: w for w in what_ifs(measure(str(libs["fix_plan"])))}
    bare = {w.flag: w for w in what_ifs(measure(str(stripped)))}
    flag = "-Wl,-z,pack-relative-relocs"
    assert bare[flag].table_shrink_bytes == plain[flag].table_shrink_bytes > 0
    assert "entries of DT_RELA into a bitmap" in bare[flag].advice
    try:
        packed = build_library(tmp_path / "relr", "fix_plan", fixture("fix_plan.c"),
                               flags=["-Wl,-z,pack-relative-relocs"])
    except Exception as exc:  # an older linker
        pytest.skip(f"the linker has no -z pack-relative-relocs: {exc}")
    if ".relr.dyn" not in oracle.sections(packed):
        pytest.skip("the linker accepted -z pack-relative-relocs but wrote no RELR table")
    packed_bare = sstrip_copy(packed, tmp_path / "relr-sstripped.so")
    assert flag not in {w.flag for w in what_ifs(measure(str(packed_bare)))}
