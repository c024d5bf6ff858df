"""Whole-column arithmetic (relrocheck/columns.py) against plain Python on the same words:
both its pure-Python functions and their compiled twins (kernels/)."""

from __future__ import annotations

import random
from array import array

import pytest

from relrocheck import columns
from relrocheck.native import kernels

# (is_sorted, gap_marks) of each implementation this install has.
IMPLEMENTATIONS = {"python": (columns.is_sorted_python, columns.gap_marks_python)}
if kernels is not None:
    IMPLEMENTATIONS["compiled"] = (kernels.is_sorted, kernels.gap_marks)


def _columns(values: list[int], typecode: str) -> list:
    column = array(typecode, values)
    return [column, memoryview(column), list(values)]


def _cases(seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    out = [[], [5], [3, 3, 3], [0, 1 << 40], [7, 3]]
    for _ in range(200):
        n = rng.randrange(0, 200)
        high = rng.choice([1 << 12, 1 << 20, 1 << 40])
        values = sorted(rng.randrange(high) for _ in range(n))
        if n > 1 and rng.random() < 0.3:
            values[rng.randrange(n)] = rng.randrange(high)  # most likely unsorted now
        out.append(values)
    return out


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("typecode", ["Q", "I"])
@pytest.mark.parametrize("chunk", [columns.CHUNK, 7])
def test_sortedness_and_runs_match_plain_python(implementation: str, typecode: str, chunk: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    is_sorted, gap_marks = IMPLEMENTATIONS[implementation]
    monkeypatch.setattr(columns, "CHUNK", chunk)  # slices of 7 words: every seam is crossed
    for values in _cases(chunk):
        if typecode == "I":
            values = [v & 0x7FFFFFFF for v in values]
        ordered = all(a <= b for a, b in zip(values, values[1:]))
        for column in _columns(values, typecode):
            assert is_sorted(column) == ordered, values
            if not ordered:
                continue
            gaps = [b - a for a, b in zip(values, values[1:])]
            for limit in (0, 8, 32, 255, 4096):
                marks = bytes(g > limit for g in gaps)
                assert gap_marks(column, limit) == (marks, bytes(g & 0xFF for g in gaps))
            with pytest.raises(ValueError, match="out of range"):
                gap_marks(column, 1 << (8 * column_width(column) - 1))


def column_width(column: object) -> int:
    return column.itemsize if isinstance(column, (array, memoryview)) else 8


def _plain_runs(marks: bytes) -> list[tuple[int, int]]:
    """Every run of two words or more between marked pairs, word by word."""
    runs, first = [], 0
    for i, mark in enumerate(marks):
        if mark:
            if i > first:
                runs.append((first, i + 1))
            first = i + 1
    if len(marks) > first:
        runs.append((first, len(marks) + 1))
    return runs


@pytest.mark.parametrize("seed", range(6))
def test_longest_runs_are_the_longest_in_address_order_among_equals(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        n = rng.randrange(0, 300)
        density = rng.choice([0.02, 0.3, 0.7, 0.98])  # long runs, short ones, isolated words
        marks = bytes(rng.random() < density for _ in range(n))
        count = rng.choice([1, 3, 64])
        expected = sorted(_plain_runs(marks), key=lambda r: (r[0] - r[1], r[0]))[:count]
        assert columns.longest_runs(marks, count) == expected, (marks, count)
    # Many short runs before a few long ones: the long ones are never crowded out.
    marks = b"\x00\x01" * 1000 + (b"\x00" * 50 + b"\x01") * 3
    assert columns.longest_runs(marks, 64)[:3] == [(2000, 2051), (2051, 2102), (2102, 2153)]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_words_with_the_top_bit_set_are_compared_directly(implementation: str) -> None:
    is_sorted, gap_marks = IMPLEMENTATIONS[implementation]
    top = 1 << 63
    assert is_sorted(array("Q", [1, top, top + 5]))
    # A gap of more than 2**63: biased, it would carry into the next lane.
    assert gap_marks(array("Q", [0, 8, top + 100, top + 108, top + 200]), 32) == (
        bytes([0, 1, 0, 1]), bytes([8, 92, 8, 92]))
    # A drop of more than half the word range between huge words: no lane shows a borrow.
    assert not is_sorted(array("Q", [0, 1 << 62, top, top + (1 << 62), 5, 10]))


@pytest.mark.parametrize("indices", [[], [2], [0, 2, 2, 4], list(range(5))[::-1]])
def test_pick_and_picker_give_the_places_asked_for_of_every_sequence(indices: list[int]
                                                                     ) -> None:
    data = b"abcde"
    expected = tuple(data[i] for i in indices)
    assert columns.pick(data, indices) == expected
    take = columns.picker(indices)
    assert take(data) == expected
    assert take(data[::-1]) == tuple(data[::-1][i] for i in indices)
    assert take("vwxyz") == tuple("vwxyz"[i] for i in indices)
