"""Which file holds a library's DWARF: the library itself, a file the user names, or one kept
where debuggers look for it.

In order: `--debug-file FILE` (it must match the library's build-id); the library's own
`.debug_info` (built with -g); `/usr/lib/debug/.build-id/xx/yyyy.debug` (Debian's -dbgsym
packages, Fedora's debuginfo); the file named by `.gnu_debuglink` (`objcopy --only-keep-debug`
+ `--add-gnu-debuglink`), next to the library, in its `.debug/` folder, or under
`/usr/lib/debug/<folder of the library>/`; last, when asked for and `DEBUGINFOD_URLS` names
servers, a debuginfod server (relrocheck/debuginfod.py).

Cost. A library without debug info costs one opening (`library_file`: its headers, build-id,
SONAME and `.gnu_debuglink`, before it is measured) and two `stat` calls. The DWARF itself is
read by relrocheck/dwarf.py.
"""

from __future__ import annotations

import os
import struct
import zlib

from relrocheck.elf import SHT_NOBITS, ElfFile
from relrocheck.errors import ElfError, RelrocheckError, UsageError
from relrocheck.model import library_name
from relrocheck.record import record

DEBUG_ROOT = "/usr/lib/debug"
# A debuglink without a build-id to compare is checked by the CRC of the whole candidate.
# Files without a build-id are small old builds; a larger candidate is not read at all, so a
# link can never make a report read gigabytes.
MAX_CRC_BYTES = 1 << 30


@record
class LibraryFile:
    """What the search needs of a library, read from its headers without measuring it: a
    stripped library whose debug file names its symbols is then measured once, with them."""

    path: str
    name: str  # as Library.name: SONAME, else the file name
    build_id: str | None
    has_debug_info: bool
    has_symtab: bool  # a .symtab with its bytes: the debug file adds no names
    debuglink: tuple[str, int] | None  # .gnu_debuglink's file name and CRC, when readable


def library_file(path: str) -> LibraryFile | None:
    """The library at `path` as the search sees it, read in one opening; None when it cannot
    be read (measuring it then reports why)."""
    try:
        with ElfFile(path) as elf:
            elf.stand_in_if_headerless()
            return LibraryFile(path=path, name=library_name(elf.soname(), path),
                               build_id=elf.build_id(), has_debug_info=elf.has_debug_info(),
                               has_symtab=elf.has_symtab(), debuglink=_debuglink(elf))
    except (RelrocheckError, IndexError, ValueError, OverflowError, struct.error):
        return None


def has_symtab(path: str) -> bool:
    """Whether the (debug) file at `path` has a .symtab with its bytes."""
    try:
        with ElfFile(path) as debug:
            return debug.has_symtab()
    except RelrocheckError:
        return False  # an unreadable debug file only costs the names


def find_debug_file(lib: LibraryFile, debug_file: str | None = None,
                    debuginfod: bool = False) -> str | None:
    """The file holding the library's DWARF, or None (then nothing is read at all).

    debuginfod: when nothing is found locally, ask the servers of DEBUGINFOD_URLS (a failure
      there is one warning on stderr, never an error).
    """
    if debug_file is not None:
        if not os.path.isfile(debug_file):
            raise UsageError(f"debug file {debug_file}: no such file")
        return debug_file
    if lib.has_debug_info:
        return lib.path
    if lib.build_id and len(lib.build_id) > 2:
        candidate = f"{DEBUG_ROOT}/.build-id/{lib.build_id[:2]}/{lib.build_id[2:]}.debug"
        if os.path.isfile(candidate):
            return candidate
    found = _from_debuglink(lib)
    if found is None and debuginfod and lib.build_id:
        found = _from_debuginfod(lib.build_id)
    return found


def check_debug_file(lib: LibraryFile, path: str) -> None:
    """A debug file given by the user must describe this build of the library."""
    try:
        with ElfFile(path) as elf:
            other = _build_id(elf)
            has_info = elf.has_debug_info()
    except ElfError as exc:
        raise UsageError(f"debug file {exc}") from None
    if lib.build_id and other and other != lib.build_id:
        raise UsageError(f"debug file {path} is for another build (build-id {other}, "
                         f"{lib.name} has {lib.build_id})")
    if not has_info:
        raise UsageError(f"debug file {path} has no .debug_info")


def debug_file_for(lib: LibraryFile, debug_file: str | None = None,
                   debuginfod: bool = False) -> str | None:
    """The file holding the library's DWARF (see find_debug_file), or None.

    `debug_file` overrides the search and must describe this very build (UsageError if not).
    """
    path = find_debug_file(lib, debug_file, debuginfod)
    if debug_file is not None:
        check_debug_file(lib, debug_file)
    return path


def _build_id(elf: ElfFile) -> str | None:
    """The build-id of a candidate debug file, which we did not make: a note too short for
    its header (or without bytes) is the file's error, not ours."""
    note = next((s for s in elf.sections if s.name == ".note.gnu.build-id"), None)
    if note is not None and (note.sh_type == SHT_NOBITS or note.sh_size < 16):
        # The reader calls such a note no build-id; for a candidate that must prove it is
        # this build, a note without bytes is a broken file.
        raise elf.fail("malformed .note.gnu.build-id (no bytes in the file)")
    try:
        return elf.build_id()
    except (struct.error, IndexError, ValueError):
        raise elf.fail("malformed .note.gnu.build-id") from None


# -- .gnu_debuglink ----------------------------------------------------------------------------


def debuglink_places(lib_path: str, name: str) -> list[str]:
    """Where GDB looks for the file a `.gnu_debuglink` names, and nowhere else.

    The link is read from a file we did not make: only a plain file name is followed (no
    folder, no `..`), so a link can only name a file in one of these three folders.
    """
    if not name or "/" in name or name in (".", ".."):
        return []
    folder = os.path.dirname(os.path.abspath(lib_path))
    return [os.path.join(folder, name), os.path.join(folder, ".debug", name),
            DEBUG_ROOT + os.path.join(folder, name)]


def _debuglink(elf: ElfFile) -> tuple[str, int] | None:
    """The file name and CRC that `.gnu_debuglink` holds; None without a readable one (a
    broken link only costs this way of finding the debug file)."""
    try:
        link = next((s for s in elf.sections if s.name == ".gnu_debuglink"), None)
        # A file name and a CRC: a few hundred bytes, never the megabytes a header claims.
        if link is None or not 8 <= link.sh_size <= 4096:
            return None
        raw = elf.section_bytes(link)
    except ElfError:
        return None
    name_end = raw.find(b"\0")
    if name_end <= 0:
        return None
    crc_at = (name_end + 4) & ~3  # the CRC follows the name, 4-byte aligned
    if crc_at + 4 > len(raw):
        return None
    (crc,) = struct.unpack_from(("<" if elf.little_endian else ">") + "I", raw, crc_at)
    return raw[:name_end].decode("utf-8", "replace"), crc


def _from_debuglink(lib: LibraryFile) -> str | None:
    if lib.debuglink is None:
        return None
    name, crc = lib.debuglink
    for candidate in debuglink_places(lib.path, name):
        if (os.path.isfile(candidate) and not os.path.samefile(candidate, lib.path)
                and _matches(candidate, lib.build_id, crc)):
            return candidate
    return None


def _matches(candidate: str, build_id: str | None, crc: int) -> bool:
    """A debuglink names a file, not a version: check it belongs to this very build."""
    if build_id:
        try:
            with ElfFile(candidate) as elf:
                other = _build_id(elf)
        except ElfError:
            return False
        if other:
            return other == build_id
    value = 0
    try:
        with open(candidate, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_CRC_BYTES:
                return False
            left = MAX_CRC_BYTES  # it may grow while read: still never more than this
            while left > 0 and (chunk := f.read(min(1 << 20, left))):
                value = zlib.crc32(chunk, value)
                left -= len(chunk)
    except OSError:
        return False  # an unreadable candidate is not the debug file we can use
    return value == crc


# -- debuginfod --------------------------------------------------------------------------------


def _from_debuginfod(build_id: str) -> str | None:
    """The debug file a debuginfod server has for this build-id, if it really is that build's."""
    from relrocheck.debuginfod import fetch_debuginfo, warn

    path = fetch_debuginfo(build_id)
    if path is None:
        return None
    try:
        with ElfFile(path) as elf:
            other = _build_id(elf)
    except ElfError as exc:
        problem = f"unusable ({exc.message})"
    else:
        if other == build_id:
            return path
        problem = f"the debug file of another build ({other})"
    warn(f"{build_id}: the file a server sent is {problem}; removed from the cache")
    try:
        os.unlink(path)  # so that the next run asks again
    except OSError:
        pass
    return None
