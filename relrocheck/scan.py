"""Audit a tree: find ELF shared objects under folders, measure them in parallel, rank them.

Files are recognised by content, never by name: the first 64 bytes must hold the ELF magic
and `e_type` ET_DYN (shared libraries and PIE executables; `.o` files are ET_REL, static
archives are not ELF, both are skipped). Every real file is measured once, identified by
(st_dev, st_ino), whatever hard links or symlinks lead to it.

Workers run `analyze` and send back a `LibrarySummary` of a few hundred bytes, never the
`Library` itself: a tree of a thousand libraries then costs the parent a few hundred KiB, and
the pickling between processes stays negligible next to the measuring.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Callable

from relrocheck.errors import RelrocheckError, UsageError
from relrocheck.measure import DEFAULT_PAGE_SIZE
from relrocheck.model import Library
from relrocheck.record import field, record, replace

ELF_MAGIC = b"\x7fELF"
ET_DYN = 3
HEADER_BYTES = 64  # an Elf64_Ehdr; an Elf32_Ehdr is 52
_EHDR_SIZE = {1: 52, 2: 64}  # by EI_CLASS

DEFAULT_SYMBOLS = 3

# A batch holds at most this many files, so progress moves and the last batches are short.
_BATCH_FILES = 32
# ... and about 1/_BATCHES_PER_JOB of the bytes per worker, so one huge library (libLLVM is a
# fifth of a typical /usr/lib) runs alone while the small ones share batches.
_BATCHES_PER_JOB = 8

Progress = Callable[[int, int, str], None]  # (files done, files in total, last path)


# -- the data a scan produces ------------------------------------------------------------------


@record
class SymbolCost:
    """One costly symbol of a library, as the scan lists it."""

    name: str
    demangled: str | None
    section: str
    size: int
    relocations: int
    pages: int
    hint: str | None  # a hints.HINT_KINDS value, or None when no hint applies
    members: int = 0  # with --group-by: the symbols in this group (name is its label)

    @property
    def label(self) -> str:
        return self.demangled or self.name


@record
class LibrarySummary:
    """What a scan keeps of one measured library: enough to rank it and say why."""

    path: str
    name: str  # SONAME, else file name
    machine: str
    pie: bool
    page_size: int
    relocated_pages: int  # pages holding at least one relocation target
    load_dirty_pages: int  # relocated pages plus the .data/.bss page the loader zero-fills
    relocations: int
    by_class: Mapping[str, int]
    writable_bytes: int
    textrel: bool
    relro: str
    symbols: tuple[SymbolCost, ...]  # the costliest few, most costly first
    hint_relocations: Mapping[str, int] = field(default_factory=dict)  # hint kind -> relocs

    @property
    def dirty_bytes(self) -> int:
        return self.load_dirty_pages * self.page_size

    @property
    def dirty_kib(self) -> float:
        return self.dirty_bytes / 1024


@record
class ScanError:
    path: str
    message: str


@record
class Candidate:
    path: str
    size: int


@record
class Discovery:
    """Shared objects found under the roots, each real file once, and the files that
    looked like ELF but could not be read as one."""

    candidates: tuple[Candidate, ...]
    errors: tuple[ScanError, ...]
    files_examined: int  # regular files whose header was read (or tried)


@record
class Totals:
    libraries: int
    relocated_pages: int
    load_dirty_pages: int
    dirty_bytes: int
    relocations: int
    writable_bytes: int
    textrel_libraries: int
    hint_relocations: Mapping[str, int]

    @property
    def dirty_kib(self) -> float:
        return self.dirty_bytes / 1024


@record
class ScanResult:
    roots: tuple[str, ...]
    page_size: int
    jobs: int
    follow_symlinks: bool
    files_examined: int
    libraries: tuple[LibrarySummary, ...]  # ranked, most costly first
    errors: tuple[ScanError, ...]  # sorted by path

    @cached_property
    def totals(self) -> Totals:
        # Each renderer reads it several times; the libraries never change.
        return compute_totals(self.libraries)


# -- finding shared objects ----------------------------------------------------------------


def classify_header(head: bytes) -> bool | str:
    """True for an ET_DYN ELF header, False for anything that is not ELF or not ET_DYN, and
    an error message for a file that starts like ELF but whose header is broken."""
    if head[:4] != ELF_MAGIC:
        return False
    ei_class, ei_data = head[4:5], head[5:6]
    if not ei_class or ei_class[0] not in _EHDR_SIZE:
        return f"unknown ELF class {ei_class[0] if ei_class else '(missing)'}"
    if not ei_data or ei_data[0] not in (1, 2):
        return f"unknown ELF data encoding {ei_data[0] if ei_data else '(missing)'}"
    if len(head) < _EHDR_SIZE[ei_class[0]]:
        return f"truncated ELF file: the ELF header is incomplete ({len(head)} bytes)"
    e_type = int.from_bytes(head[16:18], "little" if ei_data[0] == 1 else "big")
    return e_type == ET_DYN


def _sniff(path: str) -> bool | str:
    # The walk saw a regular file, but the path may be a FIFO by now: open without
    # blocking, and read only if it still is a regular file.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "is not a regular file"
        head = os.pread(fd, HEADER_BYTES, 0)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    finally:
        os.close(fd)
    return classify_header(head)


def find_libraries(roots: Sequence[str], follow_symlinks: bool = False) -> Discovery:
    """Walk the roots (folders or files) for ET_DYN ELF files.

    Roots given on the command line are always followed when they are symlinks (`/lib` is one
    on merged-/usr systems). Inside them, symlinks are skipped unless `follow_symlinks`; then
    symlinked folders are entered once each (a loop ends where it started) and a file reached
    both through a symlink and directly is listed under its direct path. Files that are not
    regular (FIFOs, devices, sockets) are never opened; a FIFO would block the scan.
    """
    # Every root is checked before any is walked: a typo fails at once, not after a long walk.
    root_stats = [_stat_root(root) for root in roots]
    found: dict[tuple[int, int], tuple[Candidate, bool]] = {}  # id -> (candidate, via symlink)
    errors: list[ScanError] = []
    seen_dirs: dict[tuple[int, int], bool] = {}  # folder id -> entered only through a symlink
    examined = 0

    def consider(path: str, st: os.stat_result, via_link: bool) -> None:
        nonlocal examined
        key = (st.st_dev, st.st_ino)
        known = found.get(key)
        if known is not None:
            if known[1] and not via_link:
                found[key] = (Candidate(path, st.st_size), False)
            return
        if st.st_size < 4:
            return  # too short for the ELF magic: not ELF, nothing to read
        examined += 1
        verdict = _sniff(path)
        if verdict is True:
            found[key] = (Candidate(path, st.st_size), via_link)
        elif verdict is not False:
            errors.append(ScanError(path, verdict))

    for root, st in zip(roots, root_stats):
        if stat.S_ISREG(st.st_mode):
            consider(root, st, False)
        elif _enter(seen_dirs, st, False):
            for path, st, via_link in _walk(root, follow_symlinks, seen_dirs, errors):
                consider(path, st, via_link)

    candidates = tuple(c for c, _ in found.values())
    return Discovery(candidates, tuple(errors), examined)


def _stat_root(root: str) -> os.stat_result:
    """A root's stat: a folder or a regular file, else a usage error."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise UsageError("no such file or directory", root) from None
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror}", root) from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise UsageError("is neither a folder nor a regular file", root)
    return st


def _enter(seen_dirs: dict[tuple[int, int], bool], st: os.stat_result, via_link: bool) -> bool:
    """Whether to walk a folder now: the first time, and once more when a folder first
    reached through a symlink is reached directly (its files then get their direct paths).
    Every folder is walked at most twice, so symlink loops end."""
    key = (st.st_dev, st.st_ino)
    seen_via_link = seen_dirs.get(key)
    if seen_via_link is None or (seen_via_link and not via_link):
        seen_dirs[key] = via_link
        return True
    return False


def _walk(root: str, follow_symlinks: bool, seen_dirs: dict[tuple[int, int], bool],
          errors: list[ScanError]) -> Iterator[tuple[str, os.stat_result, bool]]:
    """Regular files under root, depth first in name order: (path, stat, reached via a link)."""
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        folder, via_link = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            errors.append(ScanError(folder, f"cannot list folder: {exc.strerror}"))
            continue
        subfolders: list[tuple[str, bool]] = []
        for entry in entries:
            is_link = False
            try:
                is_link = entry.is_symlink()
                if is_link and not follow_symlinks:
                    continue
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                continue  # a dangling symlink, or a file removed while we walk
            except OSError as exc:
                if is_link:
                    continue  # a symlink loop (ELOOP) or a link into a folder we cannot see
                errors.append(ScanError(entry.path, f"cannot read: {exc.strerror}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                if _enter(seen_dirs, st, via_link or is_link):
                    subfolders.append((entry.path, via_link or is_link))
            elif stat.S_ISREG(st.st_mode):
                yield entry.path, st, via_link or is_link
        stack.extend(reversed(subfolders))


# -- measuring -------------------------------------------------------------------------------


def summarize(lib: Library, symbols: int = DEFAULT_SYMBOLS, group_by: str | None = None
              ) -> LibrarySummary:
    """The compact view of a measured library that a scan keeps.

    group_by (file, directory, hint): its costliest groups instead of its symbols.
    """
    costly = [s for s in lib.symbols if s.relocations][:max(symbols, 0)]
    rows: tuple[SymbolCost, ...] = tuple(SymbolCost(
        name=s.name, demangled=s.demangled if s.demangled != s.name else None,
        section=s.section, size=s.size, relocations=s.relocations, pages=s.pages,
        hint=s.hint.kind if s.hint is not None else None) for s in costly)
    if group_by is not None:
        from relrocheck.group import Group
        from relrocheck.group import group_by as grouped

        groups = [g for g in grouped(lib, group_by) if g.relocations][:max(symbols, 0)]
        def sections(g: Group) -> str:
            names = sorted({m.section for m in g.members})
            return ", ".join(names) if len(names) <= 2 else f"{len(names)} sections"

        rows = tuple(SymbolCost(name=g.label, demangled=None, section=sections(g),
                                size=g.size, relocations=g.relocations, pages=g.pages,
                                hint=g.hint_kind, members=g.count)
                     for g in groups)
    hint_relocations: dict[str, int] = {}
    for s in lib.symbols:
        if s.hint is not None and s.relocations:
            hint_relocations[s.hint.kind] = hint_relocations.get(s.hint.kind, 0) + s.relocations
    return LibrarySummary(
        path=lib.path,
        name=lib.name,
        machine=lib.machine,
        pie=lib.pie,
        page_size=lib.page_size,
        relocated_pages=lib.pages.relocated,
        load_dirty_pages=lib.pages.load_dirty,
        relocations=lib.relocations.total,
        by_class=dict(lib.relocations.by_class),
        writable_bytes=lib.writable_bytes,
        textrel=lib.textrel,
        relro=lib.relro,
        symbols=rows,
        hint_relocations=dict(sorted(hint_relocations.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def measure_one(path: str, page_size: int = DEFAULT_PAGE_SIZE,
                symbols: int = DEFAULT_SYMBOLS, group_by: str | None = None
                ) -> LibrarySummary | ScanError:
    from relrocheck.analyze import analyze

    try:
        # A scan keeps a few symbols per library: it demangles those in one c++filt run at
        # the end (not one c++filt process per library here) and shows no source lines
        # (DWARF) unless it groups by them. Hints stay on: they cost 3% and feed the totals
        # by hint kind.
        library = analyze(path, page_size=page_size, demangle=False,
                          sources=group_by in ("file", "directory"))
        return summarize(library, symbols, group_by)
    except RelrocheckError as exc:
        return ScanError(path, exc.message)
    except (OSError, MemoryError) as exc:
        return ScanError(path, f"cannot measure: {exc}")
    except Exception as exc:  # noqa: BLE001 - one bad file must not end a scan of thousands
        return ScanError(path, f"internal error while measuring ({type(exc).__name__}: {exc}); "
                               "please report it with the file")


def _measure_batch(paths: Sequence[str], page_size: int, symbols: int,
                   group_by: str | None = None) -> list[LibrarySummary | ScanError]:
    return [measure_one(p, page_size, symbols, group_by) for p in paths]


def make_batches(candidates: Iterable[Candidate], jobs: int) -> list[list[str]]:
    """Paths grouped into work items, biggest files first.

    Longest-first keeps the pool busy to the end: libLLVM does not start last, alone, while
    the other workers idle. Small files share a batch so one task's round trip (pickling,
    queue, wake-up) is paid per batch, not per file.
    """
    ordered = sorted(candidates, key=lambda c: (-c.size, c.path))
    total = sum(c.size for c in ordered)
    budget = max(total // max(jobs * _BATCHES_PER_JOB, 1), 1)
    batches: list[list[str]] = []
    batch: list[str] = []
    size = 0
    for c in ordered:
        batch.append(c.path)
        size += c.size
        if size >= budget or len(batch) >= _BATCH_FILES:
            batches.append(batch)
            batch, size = [], 0
    if batch:
        batches.append(batch)
    return batches


def _ignore_sigint() -> None:
    # Ctrl-C goes to the whole process group; the parent alone handles it, workers finish
    # their batch and exit when the pool shuts down, instead of each printing a traceback.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_batches(batches: list[list[str]], jobs: int, page_size: int, symbols: int,
                 group_by: str | None = None
                 ) -> Iterator[tuple[list[str], list[LibrarySummary | ScanError]]]:
    """Measure the batches, in `jobs` worker processes when more than one.

    A worker that dies (killed, out of memory, a crash in C) breaks the whole pool, and
    every batch not yet finished fails with it. Those libraries are measured again, one per
    task in a fresh pool; the ones that fail once more are then measured one at a time, each
    alone in its own pool, so only the library that kills its worker is reported as an error.
    """
    if jobs <= 1 or len(batches) <= 1:
        for batch in batches:
            yield batch, _measure_batch(batch, page_size, symbols, *((group_by,) if group_by
                                                                      else ()))
        return
    import multiprocessing

    # fork starts a worker in about a millisecond with relrocheck already imported; spawn
    # or forkserver would re-import Python and relrocheck in every worker.
    context = (multiprocessing.get_context("fork")
               if sys.platform.startswith("linux") else multiprocessing.get_context())
    suspects = yield from _pool_round(batches, jobs, page_size, symbols, context, group_by)
    if suspects:
        suspects = yield from _pool_round([[p] for p in suspects], jobs, page_size, symbols,
                                          context, group_by)
    for path in suspects:
        left = yield from _pool_round([[path]], 1, page_size, symbols, context, group_by)
        if left:
            yield [path], [ScanError(path, "not measured: its worker process died (killed, "
                                           "or out of memory?) while measuring it")]


def _pool_round(batches: list[list[str]], jobs: int, page_size: int, symbols: int,
                context: object, group_by: str | None = None) -> Generator[
                    tuple[list[str], list[LibrarySummary | ScanError]], None, list[str]]:
    """Run batches in one pool, yielding finished ones; return the paths of the batches a
    dead worker left unfinished."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    executor = ProcessPoolExecutor(  # type: ignore[call-overload]  # context: a BaseContext
        max_workers=min(jobs, len(batches)), mp_context=context, initializer=_ignore_sigint)
    grouping = (group_by,) if group_by else ()  # the three-argument call unless grouping
    futures = {executor.submit(_measure_batch, batch, page_size, symbols, *grouping): batch
               for batch in batches}
    unfinished: list[str] = []
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                batch = futures[future]
                try:
                    results = future.result()
                except BrokenProcessPool:
                    unfinished.extend(batch)
                    continue
                yield batch, results
    finally:
        # On Ctrl-C (or an early close of this generator) drop the queued batches and wait
        # for the running ones, which are short. Not waiting would leave the pool's manager
        # thread running into interpreter exit, where Python 3.11 may print a traceback
        # from its atexit hook (a write to the pool's closed wake-up pipe).
        executor.shutdown(wait=True, cancel_futures=True)
    order = {p: i for i, p in enumerate(p for batch in batches for p in batch)}
    return sorted(unfinished, key=order.__getitem__)


def _demangle(libraries: list[LibrarySummary]) -> list[LibrarySummary]:
    """Readable names for the few symbols kept, in one c++filt run for the whole scan rather
    than one per library in the workers."""
    from relrocheck.demangle import demangle_names, is_mangled

    names = {s.name for lib in libraries for s in lib.symbols
             if s.demangled is None and is_mangled(s.name)}
    if not names:
        return libraries
    readable = demangle_names(sorted(names))
    if not readable:
        return libraries
    out = []
    for lib in libraries:
        if any(s.name in readable for s in lib.symbols):
            lib = replace(lib, symbols=tuple(
                replace(s, demangled=readable[s.name]) if s.name in readable else s
                for s in lib.symbols))
        out.append(lib)
    return out


def rank_key(s: LibrarySummary) -> tuple:
    return (-s.relocated_pages, -s.dirty_bytes, -s.relocations, s.name, s.path)


def compute_totals(libraries: Iterable[LibrarySummary]) -> Totals:
    libs = list(libraries)
    hints: dict[str, int] = {}
    for lib in libs:
        for kind, n in lib.hint_relocations.items():
            hints[kind] = hints.get(kind, 0) + n
    return Totals(
        libraries=len(libs),
        relocated_pages=sum(s.relocated_pages for s in libs),
        load_dirty_pages=sum(s.load_dirty_pages for s in libs),
        dirty_bytes=sum(s.dirty_bytes for s in libs),
        relocations=sum(s.relocations for s in libs),
        writable_bytes=sum(s.writable_bytes for s in libs),
        textrel_libraries=sum(1 for s in libs if s.textrel),
        hint_relocations=dict(sorted(hints.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def scan(roots: Sequence[str], jobs: int = 1, follow_symlinks: bool = False,
         page_size: int = DEFAULT_PAGE_SIZE, symbols: int = DEFAULT_SYMBOLS,
         progress: Progress | None = None, group_by: str | None = None) -> ScanResult:
    """Find, measure and rank every ET_DYN ELF file under the roots.

    A file that cannot be measured becomes a `ScanError` and the scan goes on. Raises
    `UsageError` only for a root that is missing, unreadable, or neither a folder nor a file.
    group_by (file, directory, hint): each library's costliest groups instead of symbols.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, not {jobs}")
    discovery = find_libraries(roots, follow_symlinks)
    batches = make_batches(discovery.candidates, jobs)
    total = len(discovery.candidates)
    libraries: list[LibrarySummary] = []
    errors = list(discovery.errors)
    done = 0
    for batch, results in _run_batches(batches, jobs, page_size, symbols, group_by):
        for item in results:
            if isinstance(item, LibrarySummary):
                libraries.append(item)
            else:
                errors.append(item)
        done += len(batch)
        if progress is not None:
            progress(done, total, batch[-1])
    libraries.sort(key=rank_key)
    libraries = _demangle(libraries)
    errors.sort(key=lambda e: e.path)
    return ScanResult(
        roots=tuple(roots), page_size=page_size, jobs=jobs, follow_symlinks=follow_symlinks,
        files_examined=discovery.files_examined, libraries=tuple(libraries),
        errors=tuple(errors))
