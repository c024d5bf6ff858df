"""Stripped libraries: unattributed words clustered into probable objects.

The unstripped copy of the same build says, through nm -S, where the objects are; readelf
-rW says which of their words are relocated.
"""

from __future__ import annotations

import json
import subprocess
import sys

import oracle
import pytest
from libbuild import build_library, fixture, strip_copy

from relrocheck.analyze import analyze
from relrocheck.measure import measure

EXPECTED = {
    "object_class": "class description",
    "disk_ops": "ops table",
    "color_names": "string pointers",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    path = build_library(tmp_path_factory.mktemp("cluster"), "objects",
                         fixture("stripped_objects.c"))
    return path, strip_copy(path)


def test_clusters_match_the_objects_of_the_unstripped_copy(built):
    path, stripped = built
    objects = {s["name"]: s for s in oracle.symbols(path) if s["name"] in EXPECTED}
    assert set(objects) == set(EXPECTED)
    assert not {s["name"] for s in oracle.symbols(stripped, dynamic=True)} & set(EXPECTED)
    offsets = oracle.relocation_offsets(path)
    lib = measure(str(stripped))
    bucket = lib.symbol("<unattributed in .data.rel.ro>")
    assert bucket is not None and bucket.clusters
    for name, info in objects.items():
        start, end = info["address"], info["address"] + info["size"]
        inside = [o for o in offsets if start <= o < end]
        overlapping = [c for c in bucket.clusters
                       if c.address < end and start < c.address + c.size]
        assert len(overlapping) == 1, (name, overlapping)
        cluster = overlapping[0]
        # Bounds: from the object's first relocated word to the end of its last.
        assert cluster.address == inside[0]
        assert cluster.address + cluster.size == inside[-1] + lib.word_size
        assert cluster.words == len(inside)
        assert EXPECTED[name] in cluster.label, (name, cluster.label)
    ops = next(c for c in bucket.clusters if "ops table" in c.label)
    own = {s["name"] for s in oracle.symbols(path, dynamic=True)}
    symbolic_own = sum(1 for r in oracle.relocations(path)
                       if r.symbol in own and ops.address <= r.offset < ops.address + ops.size)
    assert ops.targets.get("own_export") == symbolic_own == 2


def test_unstripped_library_has_no_clusters(built):
    path, _ = built
    assert not any(s.clusters for s in measure(str(path)).symbols)


def test_clusters_in_the_report(built):
    _, stripped = built
    lib = analyze(str(stripped))
    bucket = lib.symbol("<unattributed in .data.rel.ro>")
    assert "probable object" in bucket.hint.advice
    assert "2 of" in bucket.hint.advice and "own exports" in bucket.hint.advice
    text = subprocess.run([sys.executable, "-m", "relrocheck", "report", str(stripped)],
                          capture_output=True, text=True, check=True).stdout
    assert "an ops table (2 of 4 symbolic to own exports)" in text
    doc = json.loads(subprocess.run([sys.executable, "-m", "relrocheck", "report", "--format",
                                     "json", str(stripped)], capture_output=True, text=True,
                                    check=True).stdout)
    symbols = {s["name"]: s for s in doc["libraries"][0]["symbols"]}
    clusters = symbols["<unattributed in .data.rel.ro>"]["clusters"]
    assert {c["address"] for c in clusters} == {c.address for c in bucket.clusters}


# Hundreds of short runs of two pointers, each set apart by pointer-free bytes, and after
# them one long table, in one local object (its layout is then the source's, and it has no
# name once stripped): more runs as long as the 64th longest than the runs listed.
_MANY_SHORT = """
__attribute__((used)) static struct {
    struct { const char *a, *b; long pad[8]; } pairs[300];
    const char *table[500];
    long tail[8];
} objects = {
    {""" + ", ".join(f'{{"a{i}", "b{i}"}}' for i in range(300)) + """},
    {""" + ", ".join(f'"s{i}"' for i in range(500)) + """},
};
"""


def test_the_longest_objects_are_found_behind_many_short_ones(tmp_path) -> None:
    path = build_library(tmp_path, "many", _MANY_SHORT)
    stripped = strip_copy(path)
    whole = next(s for s in oracle.symbols(path) if s["name"] == "objects")
    table_start = whole["address"] + 300 * 80  # past the pairs, as the source lays it out
    inside = [o for o in oracle.relocation_offsets(path)
              if table_start <= o < table_start + 500 * 8]
    assert len(inside) == 500
    clusters = [c for s in measure(str(stripped)).symbols for c in s.clusters]
    assert clusters and max(c.words for c in clusters) == 500
    largest = max(clusters, key=lambda c: c.words)
    assert (largest.address, largest.size) == (inside[0], inside[-1] + 8 - inside[0])
    assert "string pointers" in largest.label
