"""String targets: how many of a symbol's relative words point to text in read-only data.

A string literal begins with text and is preceded by a NUL (the previous literal's end) or by
text (the linker merged it into the tail of a longer literal); a numeric table (zlib's
static_ltree) begins with small binary values. The hints tell a table of string pointers
from a table of pointers to constants by this count.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import repeat

from relrocheck import elf as E
from relrocheck.columns import picker
from relrocheck.elf import ElfFile, SectionHeader
from relrocheck.native import kernels

# Byte classes for the string test, as translate() tables giving 1 or 0 per byte.
_TEXT = set(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D} | set(range(0xC2, 0xF5))  # UTF-8 leads
# A pread of 3 bytes costs about as much as reading 4 KiB more: a symbol's string targets
# are read word by word when they are sparser than one per 2**_SPARSE_SHIFT bytes.
_SPARSE_SHIFT = 12
_IS_TEXT = bytes(1 if b in _TEXT else 0 for b in range(256))
_IS_TEXT_OR_NUL = bytes(1 if b in _TEXT or b == 0 or 0x80 <= b < 0xC0 else 0
                        for b in range(256))


class StringTargets:
    """The relative words of a file that point into read-only data, kept as the relocation
    tables are read (views of their columns, no copies) and counted per symbol on demand.

    sorted_test: whether a column of offsets is sorted (the measurement's, which remembers
      its answer per column).
    """

    def __init__(self, elf: ElfFile, laid_out: list[SectionHeader],
                 sorted_test: Callable[[Sequence[int]], bool]) -> None:
        self.elf = elf
        self.laid_out = laid_out
        self._sorted = sorted_test
        # Relative table parts with words pointing into read-only data: (offsets, targets).
        self.parts: list[tuple[Sequence[int], Sequence[int]]] = []
        self._range: tuple[int, int, int] | None = None
        self._range_known = False  # _range computed (None: no single range)
        self._rodata_bytes: bytes | None = None

    def note(self, offsets: Sequence[int], targets: Sequence[int]) -> None:
        """Keep one table part: its sorted offsets and, aligned, the addresses they hold."""
        self.parts.append((offsets, targets))

    def _rodata_range(self) -> tuple[int, int, int] | None:
        """(start, end, file offset minus address) of the read-only data sections, when they
        lie in one range of one segment's file image."""
        # .rodata and its input-named variants (.rodata.str1.1, .rodata.cst16 with lld):
        # where literals live.
        ranges = [(s.sh_addr, s.sh_addr + s.sh_size, s.sh_offset - s.sh_addr)
                  for s in self.laid_out if s.has_file_bytes and not s.is_writable
                  and not s.sh_flags & E.SHF_EXECINSTR and s.name.startswith(".rodata")]
        if not ranges or len({delta for _, _, delta in ranges}) != 1:
            return None
        start, end = min(r[0] for r in ranges), max(r[1] for r in ranges)
        code = [s for s in self.laid_out if s.sh_flags & E.SHF_EXECINSTR
                and start < s.sh_addr + s.sh_size and s.sh_addr < end]
        return None if code else (start, end, ranges[0][2])

    def count(self, address: int, size: int) -> int | None:
        """How many of the relative words in [address, address + size) point to text.

        A string literal begins with text and is preceded by a NUL (the previous literal's
        end) or by text (the linker merged it into the tail of a longer literal); a numeric
        table (zlib's static_ltree) begins with small binary values. Three bytes per target,
        by C-level maps over this symbol's words only.
        """
        if not self._range_known:
            self._range, self._range_known = self._rodata_range(), True
        span = self._range
        if span is None:
            return None
        start, end, delta = span
        base = max(start + delta - 1, 0)
        top = min(end + delta + 1, self.elf.file_size)
        if top - base < 3:
            return None
        # Every word's three bytes lie in the file when the read-only data and a byte either
        # side do: no clamping then, and they can be read word by word.
        inside = base == start + delta - 1 and top == end + delta + 1
        count = 0
        for offsets, targets in self.parts:
            lo, hi = bisect_left(offsets, address), bisect_left(offsets, address + size)
            if lo >= hi:
                continue
            if not self._sorted(offsets):
                return None  # an unsorted table: bisect cannot find this symbol's words
            chosen = targets[lo:hi]
            if kernels is not None:
                found = self._count_compiled(chosen, start, end, base, top, delta, inside)
                if found is not None:
                    count += found
                    continue
            # Sorted as a list: linear on the usual table of strings laid out in its order
            # (ten times cheaper than is_sorted on a short slice), its least and greatest
            # target at its ends, and the order does not change the count.
            words = sorted(chosen.tolist() if isinstance(chosen, (array, memoryview))
                           else chosen)
            low, high = words[0], words[-1]
            if not (start <= low and high < end):
                words = [t for t in words if start <= t < end]
                if not words:
                    continue
                low, high = words[0], words[-1]
            before, first, second = self._text_bytes(words, low, high, base, top, delta,
                                                     inside)
            # translate makes each byte 0 or 1; the three ANDed as big integers count the
            # words where all three hold.
            ok = (int.from_bytes(before.translate(_IS_TEXT_OR_NUL), "big")
                  & int.from_bytes(first.translate(_IS_TEXT), "big")
                  & int.from_bytes(second.translate(_IS_TEXT_OR_NUL), "big"))
            count += ok.bit_count()
        return count

    def _count_compiled(self, chosen: Sequence[int], start: int, end: int, base: int,
                        top: int, delta: int, inside: bool) -> int | None:
        """The count of one table part by the compiled kernels, from the same bytes as
        `_text_bytes` reads; None where that reads three bytes a word (sparse targets),
        left to the Python path."""
        assert kernels is not None
        n, lowest, highest = kernels.target_span(chosen, start, end)
        if not n:
            return 0
        found = self._blob(n, lowest, highest, base, top, delta, inside)
        if found is None:
            return None
        blob, bias = found
        return kernels.count_text(chosen, start, end, blob, bias,  # type: ignore[no-any-return]
                                  _IS_TEXT, _IS_TEXT_OR_NUL)

    def _blob(self, count: int, lowest: int, highest: int, base: int, top: int, delta: int,
              inside: bool) -> tuple[bytes, int] | None:
        """The file bytes `count` targets from `lowest` to `highest` are read from, and the
        bias from a target to the place of the byte before it there: the range they span,
        or the whole read-only data (cached) where a byte either side may be missing; None
        where the range is sparse (the caller reads three bytes a word)."""
        if inside:
            low, high = lowest + delta - 1, highest + delta + 2
            if high - low > count << _SPARSE_SHIFT:
                return None
            return self.elf.read_at(low, high - low), delta - 1 - low
        if self._rodata_bytes is None:
            self._rodata_bytes = self.elf.read_at(base, top - base)
        return self._rodata_bytes, delta - base - 1

    def _text_bytes(self, targets: Sequence[int], lowest: int, highest: int, base: int,
                    top: int, delta: int, inside: bool) -> tuple[bytes, bytes, bytes]:
        """The byte before each target, the target's first byte and the one after it
        (`lowest` and `highest` are the least and the greatest target).

        One symbol's targets are read as the file range they span, picked from it by C-level
        lookups; where that range is sparse (libLLVM's 661 words among 35 MB of .rodata), three
        bytes a word. The read-only data is never held whole, so it adds nothing to the peak
        memory (12 MB in the synthetic library). Only when it lies at an end of the file,
        where a byte either side may be missing, is it read whole, clamped as before.
        """
        found = self._blob(len(targets), lowest, highest, base, top, delta, inside)
        if found is None:
            data = self.elf.read_windows(map(operator.add, targets, repeat(delta - 1)), 3)
            return data[0::3], data[1::3], data[2::3]
        blob, bias = found
        shifted: bytes | memoryview
        if inside:
            files = [t + bias for t in targets]  # a fifth faster than a map of operator.add
            # Copies one and two bytes on: bytes index faster than views.
            shifted = blob
        else:
            files = list(map(min, map(max, map(operator.add, targets, repeat(bias)),
                                      repeat(0)), repeat(len(blob) - 3)))
            shifted = memoryview(blob)  # the whole read-only data: viewed, not copied
        # Indexed by a word's byte before its target: the target and the byte after it
        # one and two bytes on, so no per-word offset passes; one itemgetter for the three.
        take = picker(files)
        return bytes(take(blob)), bytes(take(shifted[1:])), bytes(take(shifted[2:]))
