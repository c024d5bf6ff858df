"""Probable objects in the unattributed words of a stripped library.

A distribution build keeps only .dynsym: most relocated words belong to no symbol. They are
not random: an object is a run of relocated words with a regular stride (every word of a
pointer table, one word per record of a table of records), and objects are separated by
pointer-free bytes. `find_clusters` cuts the sorted relocated addresses of one bucket where
two consecutive words are far apart, and labels each run by what its words point to: a
string next to code pointers is a class description or a command table, pairs of own
exports and local code an ops table.

Work is per run, never per word in Python: cuts and gaps come from whole-column arithmetic
(relrocheck/columns.py), and each run's target kinds from bytes.count on a slice.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import chain

from relrocheck import columns
from relrocheck.model import TARGET_KINDS, Cluster

# Two relocated words more than this many words apart belong to different objects.
GAP_WORDS = 4
MERGE_LIMIT = 1 << 16  # words; beyond, the largest table alone cuts the runs
MAX_CLUSTERS = 64  # per bucket: the largest ones; a report shows the first few anyway
_MAX_PERIOD = 4  # record patterns up to 4 gaps long (e.g. {name, number, number, fn})


def find_clusters(parts: Sequence[tuple[Sequence[int], bytes]], word: int
                  ) -> tuple[Cluster, ...]:
    """Runs of relocated words among `parts`: sorted offsets with their target kind codes,
    one part per relocation table (relative, symbolic...)."""
    parts = [(offsets, kinds) for offsets, kinds in parts if len(offsets)]
    if not parts:
        return ()
    # One sorted column of addresses (timsort merges the sorted parts); the kinds are counted
    # per run in each part, so no key per word is needed. A huge bucket (libLLVM's 340,000
    # words) is cut by its largest part alone, the others counted in the runs they fall in:
    # a merged list of Python ints would double the peak memory of the measurement.
    total = sum(len(o) for o, _ in parts)
    if len(parts) == 1:
        offsets: Sequence[int] = parts[0][0]
    elif total <= MERGE_LIMIT:
        offsets = sorted(chain.from_iterable(o for o, _ in parts))
    else:
        offsets = max(parts, key=lambda p: len(p[0]))[0]
    n = len(offsets)
    if n < 2:
        return ()
    # Where two neighbours are more than GAP_WORDS words apart, by whole-column arithmetic;
    # within a run every gap fits a byte, and the runs' gap patterns are slices of one pass.
    marks, gaps = columns.gap_marks(offsets, GAP_WORDS * word)
    out = []
    for lo, hi in sorted(columns.longest_runs(marks, MAX_CLUSTERS)):  # in address order
        first, last = offsets[lo], offsets[hi - 1]
        counts = [0] * len(TARGET_KINDS)
        for part_offsets, kinds in parts:
            a = bisect_left(part_offsets, first)
            b = bisect_right(part_offsets, last)
            if a < b:
                for code in set(kinds[a:b]):
                    counts[code] += kinds.count(code, a, b)
        targets = {TARGET_KINDS[code]: count for code, count in enumerate(counts) if count}
        stride = _stride(gaps[lo:hi - 1])
        out.append(Cluster(address=offsets[lo], size=offsets[hi - 1] - offsets[lo] + word,
                           words=hi - lo, stride=stride, targets=targets,
                           label=_label(targets, stride, word)))
    return tuple(out)


def _stride(gaps: bytes) -> int:
    """The record size: the sum of the shortest repeating pattern of gaps, else the most
    common gap (the first seen of equally common ones)."""
    for period in range(1, min(_MAX_PERIOD, len(gaps) // 2) + 1):
        if gaps[:-period] == gaps[period:]:
            return sum(gaps[:period])
    if not gaps:
        return 0
    counts = {value: gaps.count(value) for value in set(gaps)}
    most = max(counts.values())
    return min((gaps.find(value), value) for value, n in counts.items() if n == most)[1]


def _label(targets: dict[str, int], stride: int, word: int) -> str:
    total = sum(targets.values())
    code = targets.get("code", 0)
    own = targets.get("own_export", 0)
    strings = targets.get("rodata", 0)
    objects = targets.get("relro", 0) + targets.get("data", 0)
    if strings and code and strings + code + own >= total * 0.9:
        return "names next to code pointers: a class description or a command table"
    if own and code and own + code >= total * 0.9:
        return "own exports next to local code: an ops table"
    if code + own == total:
        return ("a table of function pointers" if stride == word else
                f"records with function pointers, every {stride} bytes")
    if strings == total:
        return ("a table of string pointers" if stride == word else
                f"records with string pointers, every {stride} bytes")
    if objects == total:
        return "pointers to other objects of this library"
    if targets.get("external", 0) == total:
        return "pointers to other libraries' symbols"
    return "mixed pointers"
