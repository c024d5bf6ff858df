"""Target kinds of relocated words: the kind code of the section each address points into
(code, read-only data, relro, data, as `measure` numbers them), for whole columns.

Relative relocations are the bulk of a large library, so their targets are classified
through a table with one entry per grain of the image, by C-level passes: `bytes.translate`
of the address bytes where every address is below 4 GiB (64 KiB grains, indexed by bits
16-31), else a map over a finer table. Only the few addresses in a grain that two sections
share go through a bisect. The compiled kernel (kernels/targets.c) bisects each
address instead, starting from its neighbour's section; the table path is its twin.
"""

from __future__ import annotations

import operator
import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from functools import partial
from itertools import repeat

from relrocheck.native import kernels

# The classifier's table: one entry per grain of the image (64 bytes or more), at most a
# million entries.
LITTLE_ENDIAN_HOST = sys.byteorder == "little"
GRAIN_MIN_SHIFT = 6
GRAIN_TABLE_MAX = 1 << 20
AMBIGUOUS = 0xFF  # a grain that a section boundary cuts: its addresses are bisected
# Distinct high bytes of 64 KiB grains merged by translate tables; beyond, a map.
MAX_TRANSLATED_HIGH_BYTES = 8
LANE_SLICE = 1 << 16  # addresses copied at a time to cut byte lanes from


def address_classifier(spans: Sequence[tuple[int, int, int]], unknown: int
                       ) -> Callable[[Sequence[int]], bytes]:
    """A function: addresses -> their kind codes, one byte each.

    spans: (start, end, kind code) of the laid-out sections, by address (where two overlap,
      the first one keeps the bytes). unknown: the code of an address in no section.
    """
    starts: list[int] = []
    kinds: list[int] = [unknown]
    cursor = -1
    for start, end, kind in spans:
        if start < cursor:
            continue  # overlapping sections: the first one wins
        if start > cursor and starts:
            starts.append(cursor)
            kinds.append(unknown)
        starts.append(start)
        kinds.append(kind)
        cursor = end
    starts.append(cursor)
    kinds.append(unknown)
    find = partial(bisect_right, starts)
    lookup = kinds.__getitem__

    def resolve(codes: bytes, addresses: Sequence[int]) -> bytes:
        if AMBIGUOUS not in codes:
            return codes
        fixed = bytearray(codes)
        i = fixed.find(AMBIGUOUS)
        while i >= 0:
            fixed[i] = lookup(find(addresses[i]))
            i = fixed.find(AMBIGUOUS, i + 1)
        return bytes(fixed)

    limit = max(cursor, 0)
    # The finest grain whose table stays small.
    shift = GRAIN_MIN_SHIFT
    while limit >> shift > GRAIN_TABLE_MAX:
        shift += 1
    fine_table: list[list[int]] = []  # built on first use: the coarse table usually serves

    def fine() -> list[int]:
        if not fine_table:
            fine_table.append(grain_table(starts, kinds, shift, (limit >> shift) + 1, unknown))
        return fine_table[0]

    # 64 KiB grains over the 32-bit address space, indexed by bits 16-31 of each address,
    # which a little-endian array holds as every 2nd (ELF32) or 4th (ELF64) halfword.
    # The compiled kernel bisects instead (kernels/targets.c): then no table is built.
    compiled = kernels is not None and starts[0] >= 0
    kind_bytes = bytes(kinds)
    coarse = grain_table(starts, kinds, 16, 1 << 16, unknown) \
        if LITTLE_ENDIAN_HOST and not compiled else None

    def classify(addresses: Sequence[int]) -> bytes:
        if compiled:
            try:
                return kernels.classify(addresses, starts, kind_bytes)  # type: ignore[no-any-return, union-attr]
            except OverflowError:
                pass  # a negative addend (an int column of a hand-made list): as below
        if coarse is not None and isinstance(addresses, (array, memoryview)):
            lanes = bits_16_to_31(addresses)
            # Targets can crowd into a grain that a section boundary cuts (all strings
            # in a small .rodata right after .text): a sample tells whether the coarse
            # table would leave too many for the bisect.
            if lanes is not None and len(lanes[0]):
                low, high = lanes
                step = max(1, len(low) // 256)
                sample = bytes(map(coarse.__getitem__,
                                   map(operator.add, low[::step],
                                       map(operator.mul, high[::step], repeat(256)))))
                if sample.count(AMBIGUOUS) * 32 < len(sample):
                    return resolve(coarse_codes(coarse, low, high), addresses)
        try:
            codes = bytes(map(fine().__getitem__, map(operator.rshift, addresses,
                                                      repeat(shift))))
        except IndexError:  # an address past the image (or a negative addend)
            return bytes(map(lookup, map(find, addresses)))
        return resolve(codes, addresses)

    return classify



def grain_table(starts: list[int], kinds: list[int], shift: int, size: int, unknown: int
                ) -> list[int]:
    """Kind code per grain of 2**shift bytes; AMBIGUOUS where a section boundary cuts one.

    `kinds[i + 1]` is the kind of [starts[i], starts[i + 1]); addresses past the last start,
    or past the table, are of no section.
    """
    table = bytearray([unknown]) * size
    for i, start in enumerate(starts[:-1]):
        end = min(starts[i + 1], size << shift)
        if end > start >= 0:
            first, last = start >> shift, (end - 1) >> shift
            table[first:last + 1] = bytes([kinds[i + 1]]) * (last - first + 1)
    mask = (1 << shift) - 1
    for boundary in starts:
        if boundary >= 0 and boundary & mask and boundary >> shift < size:
            table[boundary >> shift] = AMBIGUOUS
    return list(table)  # list indexing is the cheapest C-level lookup


def bits_16_to_31(addresses: array | memoryview) -> tuple[bytes, bytes] | None:
    """Bits 16-23 and bits 24-31 of each address, as two byte lanes, if every address is
    below 4 GiB.

    Only for host-order (little-endian) arrays of 4- or 8-byte words. Copied a slice at a
    time, so that the column is never held twice.
    """
    size = addresses.itemsize
    if size not in (4, 8) or (isinstance(addresses, memoryview) and not addresses.c_contiguous):
        return None
    view = memoryview(addresses)
    low, high = [], []
    for start in range(0, len(view), LANE_SLICE):
        raw = view[start:start + LANE_SLICE].tobytes()
        if size == 8 and any(raw[lane::8].count(0) != len(raw) // 8 for lane in range(4, 8)):
            return None
        low.append(raw[2::size])
        high.append(raw[3::size])
    return b"".join(low), b"".join(high)


def coarse_codes(coarse: list[int], low: bytes, high: bytes) -> bytes:
    """coarse[high * 256 + low] for each pair of lane bytes.

    By translate when the high bytes take few values (a library under 16 MiB has one,
    libLLVM's 117 MB seven): one 256-entry table per value, the results merged as integers
    where the high byte is theirs.
    """
    present: list[int] = []
    rest = high
    while rest and len(present) <= MAX_TRANSLATED_HIGH_BYTES:
        present.append(rest[0])
        rest = rest.translate(None, rest[:1])
    if rest:
        return bytes(map(coarse.__getitem__,
                         map(operator.add, low, map(operator.mul, high, repeat(256)))))
    if len(present) == 1:
        h = present[0]
        return low.translate(bytes(coarse[h << 8:(h + 1) << 8]))
    # A high byte whose 16 MiB hold one kind (inside .text) gives it by itself: all those
    # are one translate of the high bytes; only the others merge per value.
    tables = {h: bytes(coarse[h << 8:(h + 1) << 8]) for h in present}
    uniform = bytearray(256)
    mixed = []
    for h, table in tables.items():
        if table.count(table[0]) == 256:
            uniform[h] = table[0]
        else:
            mixed.append(h)
    by_high = high.translate(uniform)
    if not mixed:
        return by_high
    merged = int.from_bytes(by_high, "little")
    for h in mixed:
        codes = int.from_bytes(low.translate(tables[h]), "little")
        # 0xFF where the high byte is h, else 0 (where the uniform ones left 0).
        mine = int.from_bytes(high.translate(bytes(h) + b"\xff" + bytes(255 - h)), "little")
        merged |= codes & mine
    return merged.to_bytes(len(low), "little")
