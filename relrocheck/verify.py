"""Check the prediction against the kernel: load a library and count its private dirty pages.

The library is loaded the way every program loads it, by the dynamic loader with immediate
binding (RTLD_NOW: every relocation, PLT slots included, is applied at load). The child
process is `cat /proc/self/smaps` run with `LD_PRELOAD=<library>` and `LD_BIND_NOW=1`: the
loader maps and relocates the library (and its dependencies) and runs its constructors
before `cat` starts, then `cat` prints its own memory map. `cat` links nothing but the C
library, whereas a Python child would already have libz, libm, libexpat and libffi mapped
(and dirtied by its own start-up) before loading anything.

The file is fsync'ed first: pages of a freshly written file still dirty in the page cache
count as Private_Dirty in a mapping of it until written back.

What is compared: the predicted load-time dirty pages (relocation targets plus the page
.data shares with .bss) against the sum of Private_Dirty over the mappings of that file,
per mapping and in total. Constructors that write .data add pages the file cannot predict.
"""

from __future__ import annotations

import functools
import os
import platform
import signal
import subprocess
import sys
import tempfile

from relrocheck import elf as E
from relrocheck.elf import ElfFile
from relrocheck.errors import RelrocheckError, UsageError
from relrocheck.model import Library
from relrocheck.record import field, record

LOADER = ("cat", "/proc/self/smaps")
TIMEOUT_SECONDS = 60

# platform.machine() -> archtables key
_HOST_MACHINES = {
    "x86_64": "x86_64", "amd64": "x86_64", "i386": "i386", "i486": "i386", "i586": "i386",
    "i686": "i386", "aarch64": "aarch64", "arm64": "aarch64", "armv6l": "arm",
    "armv7l": "arm", "armv8l": "arm", "riscv64": "riscv", "ppc64": "ppc64", "ppc64le": "ppc64",
    "ppc": "ppc", "s390x": "s390", "loongarch64": "loongarch",
}


@record
class Mapping:
    start: int  # library virtual address (as linked), not the randomised runtime address
    end: int
    permissions: str  # r--p, r-xp, rw-p, ...
    file_offset: int
    predicted_pages: int
    measured_pages: int
    private_dirty_kb: int


@record
class Verification:
    path: str
    name: str
    page_size: int
    predicted_pages: int  # Pages.load_dirty
    relocated_pages: int  # Pages.relocated
    measured_pages: int
    private_dirty_kb: int
    mappings: tuple[Mapping, ...]
    already_mapped: bool  # the loader process maps this file itself (libc): see note
    notes: tuple[str, ...] = field(default=())

    @property
    def difference(self) -> int:
        return self.measured_pages - self.predicted_pages


def host_page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def check_host(lib: Library) -> None:
    """Only a library this machine can run can be loaded."""
    host = _HOST_MACHINES.get(platform.machine())
    host_class = 64 if sys.maxsize > 2 ** 32 else 32
    if (lib.machine != host or lib.elf_class != host_class
            or lib.endian != sys.byteorder):
        raise UsageError(f"cannot load this {lib.machine} ELF{lib.elf_class} {lib.endian}-endian "
                         f"file on this {platform.machine()} host (verify loads the library; "
                         "use it on the target machine)", lib.path)
    # A PIE executable cannot be loaded as a library.
    if lib.file_type != "DYN" or lib.pie:
        raise UsageError("verify loads shared libraries; this is an executable", lib.path)


def verify(lib: Library, timeout: float = TIMEOUT_SECONDS) -> Verification:
    """Load `lib` (measured with the host's page size) in a child and compare; the load
    must finish within `timeout` seconds."""
    check_host(lib)
    page = lib.page_size
    if page != host_page_size():
        raise UsageError(f"page size {page} is not this machine's ({host_page_size()})")
    _fsync(lib.path)
    try:
        real = os.path.realpath(lib.path)
        st = os.stat(real)
    except (OSError, ValueError) as exc:
        raise RelrocheckError(f"cannot open: {getattr(exc, 'strerror', None) or exc}",
                              lib.path) from None
    identity = (real, st.st_ino)
    already = _mapped(_loader_alone(), identity)
    smaps = _run_loader(real, lib.path, timeout)
    regions = _mapped(smaps, identity)
    if not regions:
        raise RelrocheckError("the loader did not map it (see its message above, or a missing "
                              "dependency)", lib.path)
    bias, predicted = _prediction(lib)
    bias = min(r.start for r in regions) - bias
    mappings = []
    for r in regions:
        start, end = r.start - bias, r.end - bias
        mappings.append(Mapping(
            start=start, end=end, permissions=r.permissions, file_offset=r.offset,
            predicted_pages=sum(1 for p in predicted if start <= p < end),
            measured_pages=-(-r.private_dirty_kb * 1024 // page),
            private_dirty_kb=r.private_dirty_kb))
    total_kb = sum(r.private_dirty_kb for r in regions)
    notes = []
    if already:
        notes.append("the loader process (cat) maps this file itself, so its pages include "
                     "what the process wrote at start-up: compare with care")
    return Verification(
        path=lib.path, name=lib.name, page_size=page, predicted_pages=lib.pages.load_dirty,
        relocated_pages=lib.pages.relocated, measured_pages=-(-total_kb * 1024 // page),
        private_dirty_kb=total_kb, mappings=tuple(mappings), already_mapped=bool(already),
        notes=tuple(notes))


# -- the child -----------------------------------------------------------------------------------


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError) as exc:
        raise RelrocheckError(f"cannot open: {getattr(exc, 'strerror', None) or exc}",
                              path) from None
    try:
        os.fsync(fd)
    except OSError:
        pass  # a read-only file system has nothing dirty to write back
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=1)
def _loader_alone() -> str:
    """The loader process's own memory map: the same for every library verified."""
    return _run_loader(None, LOADER[0])


def _run_loader(library: str | None, shown: str,
                timeout: float = TIMEOUT_SECONDS) -> str:
    """The smaps text of the loader process with `library` preloaded; errors name `shown`.

    The child runs in a session (and process group) of its own, its output goes to files,
    and the whole group is killed once the loader process is done: a constructor that forks
    would otherwise keep a pipe open, and its child alive, after `cat` has finished.
    """
    env = dict(os.environ, LC_ALL="C")
    env.pop("LD_PRELOAD", None)
    with tempfile.TemporaryDirectory(prefix="relrocheck-verify-") as tmp:
        if library is not None:
            env["LD_BIND_NOW"] = "1"
            if any(c in library for c in " :\t\n"):
                # LD_PRELOAD splits on spaces and colons, with no escape: use a plain link.
                link = os.path.join(tmp, "lib.so")
                os.symlink(library, link)
                library = link
            env["LD_PRELOAD"] = library
        with open(os.path.join(tmp, "out"), "w+b") as out, \
                open(os.path.join(tmp, "err"), "w+b") as err:
            try:
                proc = subprocess.Popen(LOADER, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, start_new_session=True)
            except FileNotFoundError:
                raise RelrocheckError(f"cannot run the loader process ({LOADER[0]} not found)"
                                      ) from None
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise RelrocheckError(f"loading it did not finish within {timeout:g} s "
                                      "(a constructor that waits? see --timeout)",
                                      shown) from None
            finally:
                _kill_group(proc)
            out.seek(0)
            err.seek(0)
            # Paths in the map are bytes: decoded as the command line was (os.fsdecode),
            # so a file name that is not UTF-8 still matches its argument.
            stdout = os.fsdecode(out.read())
            stderr = os.fsdecode(err.read())
    message = stderr.strip().splitlines()
    if returncode < 0:
        try:
            signame = signal.Signals(-returncode).name
        except ValueError:
            signame = f"signal {-returncode}"
        raise RelrocheckError(f"loading failed: the process was killed by {signame} "
                              "(a crash in a constructor?)", shown)
    if returncode != 0 or "cannot be preloaded" in stderr:
        raise RelrocheckError("loading failed: " + (
            message[-1] if message else
            f"exit code {returncode} (a constructor called exit()?)"), shown)
    if not stdout:
        # The loader ran the constructors, then something ended the process before `cat`.
        raise RelrocheckError("loading failed: the process ended before it could read its "
                              "memory map (a constructor called exit()?)", shown)
    return stdout


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """Kill the child's whole process group (what its constructors forked) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    proc.wait()


@record(frozen=False)
class _Region:
    start: int
    end: int
    permissions: str
    offset: int
    private_dirty_kb: int = 0


def _mapped(smaps: str, identity: tuple[str, int]) -> list[_Region]:
    """The mappings of one file in a /proc/PID/smaps (or maps) text, by path or inode."""
    path, inode = identity
    regions: list[_Region] = []
    current: _Region | None = None
    for line in smaps.splitlines():
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
            current = None
            name = head[5].strip() if len(head) > 5 else ""
            if name == path or (head[4].isdigit() and int(head[4]) == inode and name):
                start, end = (int(x, 16) for x in head[0].split("-"))
                current = _Region(start, end, head[1], int(head[2], 16))
                regions.append(current)
        elif current is not None and line.startswith("Private_Dirty:"):
            current.private_dirty_kb = int(line.split()[1])
    return regions


def _prediction(lib: Library) -> tuple[int, set[int]]:
    """The lowest PT_LOAD address (the mapping at the lowest address is its page) and the
    predicted dirty page addresses: relocated pages plus the .data/.bss shared pages."""
    page = lib.page_size
    pages = set(lib.pages.relocated_addresses).union(lib.pages.zero_filled_addresses)
    with ElfFile(lib.path) as elf:
        lowest = min((p.p_vaddr for p in elf.segments if p.p_type == E.PT_LOAD), default=0)
    return lowest - lowest % page, pages
