"""Whole-column arithmetic on sorted columns of unsigned words, without a Python int per word.

A column of n words in host byte order is also one integer of n lanes. For a sorted column,
subtracting the integer of its first n-1 words from that of its last n-1 gives, lane by lane,
the gaps between neighbours: no lane borrows, as no gap is negative. XOR needs no such care.
Each lane's bytes are then tested by `bytes.translate`, so a pass over half a million
relocations costs a few milliseconds where a `map` over the words costs fifty.

The columns are what the ELF reader gives: arrays and memoryviews of 4- or 8-byte words (a
list, e.g. of merged tables, is converted first). Work is done in slices of CHUNK words, so
the integers stay small next to the column itself: slices of 32 KiB, which stay in the
processor's cache between the passes over them, made the passes over 521,000 words 15%
faster than slices of 512 KiB (is_sorted 7.1 -> 6.0 ms, gap_marks 14.8 -> 12.2 ms).
"""

from __future__ import annotations

import operator
import sys
from array import array
from collections.abc import Callable, Sequence
from itertools import compress
from typing import TypeVar

from relrocheck.native import kernels

T = TypeVar("T")
CHUNK = 1 << 12
_ORDER = sys.byteorder
# translate() table: 1 for a byte with its top bit set, else 0.
_TOP_BIT = bytes(b >> 7 for b in range(256))


def pick(values: Sequence[T], indices: Sequence[int]) -> tuple[T, ...]:
    """values[i] for each i of `indices`: operator.itemgetter's loop in C, twice as fast as
    a map of __getitem__ (and, unlike itemgetter, a tuple also for one index)."""
    if len(indices) == 1:
        return (values[indices[0]],)
    if not indices:
        return ()
    return operator.itemgetter(*indices)(values)  # type: ignore[no-any-return]


def picker(indices: Sequence[int]) -> Callable[[Sequence[T]], tuple[T, ...]]:
    """`pick` with these indices as a function, for picking the same places of several
    sequences (the itemgetter is made once)."""
    if len(indices) == 1:
        index = indices[0]
        return lambda values: (values[index],)
    if not indices:
        return lambda values: ()
    return operator.itemgetter(*indices)


def compressed_python(column: Sequence[int], selector: bytes) -> array:
    """`compressed` in Python: the compiled kernel's twin."""
    return array(typecode(column), compress(column, selector))


def compressed(column: Sequence[int], selector: bytes) -> array:
    """The column's items where `selector` has a byte other than 0 (itertools.compress), as
    an array of the column's type: a list, or an array or memoryview of words."""
    code = typecode(column)
    if kernels is None or not isinstance(column, (array, memoryview)):
        return array(code, compress(column, selector))
    out = array(code)
    out.frombytes(kernels.compress(column, selector))
    return out


def typecode(column: Sequence[int]) -> str:
    """The array typecode of a column's words: an array's, a memoryview's format (without a
    byte-order prefix), "Q" for a list of ints."""
    if isinstance(column, array):
        return column.typecode
    if isinstance(column, memoryview):
        return column.format.lstrip("@=")
    return "Q"


def word_bytes(column: Sequence[int]) -> tuple[bytes, int]:
    """The column's bytes in host order, and its word size.

    Copied once into bytes (a memcpy): strided slices of bytes are C loops, those of a
    memoryview ten times slower.
    """
    if isinstance(column, (memoryview, array)) and column.itemsize in (4, 8):
        return column.tobytes(), column.itemsize
    return array("Q", column).tobytes(), 8


def is_sorted_python(column: Sequence[int]) -> bool:
    """Whether the column never decreases.

    When every word has its top bit clear (addresses always do), a lane of the difference
    has its top bit set exactly where a borrow happened, that is where a word is smaller
    than the one before it; a borrow out of the last lane makes the difference negative.
    """
    raw, size = word_bytes(column)
    n = len(raw) // size
    if n < 2:
        return True
    if _has_top_bit(raw, size):
        values = list(column)  # words of 2**63 and more: not addresses; compared directly
        return all(a <= b for a, b in zip(values, values[1:]))
    bits = 8 * size
    top_bits = int.from_bytes((1 << (bits - 1)).to_bytes(size, _ORDER) * min(CHUNK, n - 1),
                              _ORDER)
    for start in range(0, n - 1, CHUNK):
        difference, lanes = _difference(raw, size, start, min(n, start + CHUNK + 1))
        if difference < 0 or difference & top_bits:
            return False
    return True


def gap_marks_python(column: Sequence[int], limit: int) -> tuple[bytes, bytes]:
    """Where a sorted column of addresses (words below 2**(bits - 1)) breaks into runs of
    close words, one byte per pair of neighbours: marks[i] is 1 where column[i + 1] -
    column[i] > limit, else 0; and gaps[i], that gap's low byte, which within a run of a
    limit below 256 is the gap itself (a run's record pattern is then a slice).

    Adding 2**(bits - 1) - (limit + 1) to every lane of the gaps carries into no other lane
    and sets a lane's top bit exactly where its gap exceeds the limit.
    """
    raw, size = word_bytes(column)
    n = len(raw) // size
    bits = 8 * size
    if not 0 <= limit < 1 << (bits - 1):
        raise ValueError(f"limit {limit} is out of range")
    if _has_top_bit(raw, size):
        # Words of 2**(bits - 1) and more (a crafted file's addresses): a gap may then fill
        # its lane and the bias carry into the next one, so they are compared directly.
        values = list(column)
        if any(a > b for a, b in zip(values, values[1:])):
            raise ValueError("runs of an unsorted column")
        gaps = [b - a for a, b in zip(values, values[1:])]
        return bytes(gap > limit for gap in gaps), bytes(gap & 0xFF for gap in gaps)
    bias = ((1 << (bits - 1)) - (limit + 1)).to_bytes(size, _ORDER)
    bias_lanes = min(CHUNK, max(n - 1, 0))
    full_bias = int.from_bytes(bias * bias_lanes, _ORDER)
    top = slice(size - 1, None, size) if _ORDER == "little" else slice(0, None, size)
    low = slice(0, None, size) if _ORDER == "little" else slice(size - 1, None, size)
    marks: list[bytes] = []
    low_bytes: list[bytes] = []
    for start in range(0, n - 1, CHUNK):
        stop = min(n, start + CHUNK + 1)
        difference, lanes = _difference(raw, size, start, stop)
        if difference < 0:
            raise ValueError("runs of an unsorted column")
        low_bytes.append(difference.to_bytes(lanes * size, _ORDER)[low])
        # The last slice may be shorter: as many lanes of the bias (all lanes are alike).
        biased = difference + (full_bias >> (bits * (bias_lanes - lanes)))
        marks.append(biased.to_bytes(lanes * size, _ORDER)[top].translate(_TOP_BIT))
    return b"".join(marks), b"".join(low_bytes)


def longest_runs(marks: bytes, count: int) -> list[tuple[int, int]]:
    """The `count` longest runs of two words or more that `gap_marks` marks cut, as (first,
    end) word indices, longest first, equally long ones in address order.

    Found from the longest down: a pass finds every run of at least k words by searching
    for k - 1 unmarked pairs (bytes.find, in C), k halving until `count` runs are known, so
    the cost follows the long runs, not the words, where short ones abound (a stripped
    library's bucket of isolated pointers).
    """
    found: dict[int, int] = {}  # first word -> end
    k = 1 << max(len(marks).bit_length() - 1, 0)
    while k >= 1 and len(found) < count:
        needle = bytes(k)
        position = marks.find(needle)
        while position >= 0:
            first = position  # the search starts past a mark: at a run's first pair
            end = marks.find(1, position)
            end = len(marks) if end < 0 else end
            # Pairs first..end-1 are unmarked: words first..end, end + 1 - first of them.
            found[first] = end + 1
            position = marks.find(needle, end + 1)
        k //= 2
    ranked = sorted(found.items(), key=lambda run: (run[0] - run[1], run[0]))
    return ranked[:count]


def _has_top_bit(raw: bytes, size: int) -> bool:
    """Whether a word of the column has its top bit set."""
    top = raw[size - 1::size] if _ORDER == "little" else raw[0::size]
    return 1 in top.translate(_TOP_BIT)


def _difference(raw: bytes, size: int, start: int, stop: int) -> tuple[int, int]:
    """(the integer whose lanes are column[i + 1] - column[i] for start <= i < stop - 1 when
    the slice is sorted, the number of lanes); negative when the slice is not sorted."""
    lanes = stop - 1 - start
    bits = 8 * size
    whole = int.from_bytes(memoryview(raw)[start * size:stop * size], _ORDER)
    if _ORDER == "little":  # lane 0 is the lowest
        later, earlier = whole >> bits, whole & ((1 << (bits * lanes)) - 1)
    else:
        later, earlier = whole & ((1 << (bits * lanes)) - 1), whole >> bits
    return later - earlier, lanes


# The compiled twins where the install built them (relrocheck/native.py); the functions
# above define what they return.
is_sorted: Callable[[Sequence[int]], bool] = (
    is_sorted_python if kernels is None else kernels.is_sorted)
gap_marks: Callable[[Sequence[int], int], tuple[bytes, bytes]] = (
    gap_marks_python if kernels is None else kernels.gap_marks)
