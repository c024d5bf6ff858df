"""The baseline: the accepted numbers of each library, a text file committed and reviewed.

Format: JSON, sorted keys, two-space indentation, one line per section and per symbol, a
trailing newline. JSON rather than YAML because
- the standard library writes it byte for byte the same on every run (sorted keys, ASCII
  escapes), so the same build gives a byte-identical file and `git diff` shows only real
  changes; YAML emitters differ in quoting and line folding between versions;
- it has one spelling per value (no `no`/`off` booleans, no implicit dates), so a hand edit
  cannot change a number's meaning;
- reading it needs no third-party import on the hot path of every build's check;
- one line per symbol keeps a review diff to "+ one line per new table".

Content: `format_version`, then `libraries`, one entry per library keyed by `Library.name`
(SONAME, else file name). An entry holds the architecture and page size it was measured for,
the RELRO/TEXTREL state, totals, writable sections (kind, bytes, relocations) and every symbol
of writable data with its section, bytes and relocation count; relocations that land in no
symbol appear under their `<unattributed in .X>` bucket names. No addresses, paths, build IDs,
tool versions or timestamps: nothing that changes when the numbers do not.

Local symbols of one name in several object files (two `static const struct ops ops`) cannot
be told apart by name; they are summed into one row with `copies`.

Writes take an exclusive `fcntl.flock` on the baseline's folder around read-modify-write,
and replace the file atomically (temporary file in the same folder, fsync, `os.replace`), so
concurrent `--baseline update` runs of different libraries all survive and a reader never
sees half a file. Readers take no lock: the rename gives them the old or the new
file whole. A corrupt, truncated or future-version file raises BaselineError and is never
overwritten.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from relrocheck.errors import BaselineError
from relrocheck.files import read_regular_file
from relrocheck.model import SECTION_KINDS, Library, Symbol
from relrocheck.policy import RELRO_ORDER, USER_SECTION_KINDS
from relrocheck.record import record
from relrocheck.text import printable

FORMAT_VERSION = 1

# Library totals the baseline records, in the order reports list them.
TOTAL_METRICS: tuple[str, ...] = (
    "relocated_pages",  # distinct pages holding a relocation target: dirty in every process
    "load_dirty_pages",  # relocated pages + the .data/.bss page the loader zero-fills
    "relocations",
    "symbolic_relocations",
    "static_initializers",
    "writable_bytes",  # file-backed writable bytes
    "zero_fill_bytes",  # .bss/.tbss
)


@record
class SymbolEntry:
    section: str
    bytes: int
    relocations: int
    copies: int = 1  # same-named local symbols of several objects, summed
    demangled: str | None = None  # for review: `vtable for Foo` beside the raw key `_ZTV3Foo`


@record
class SectionEntry:
    kind: str
    bytes: int
    relocations: int


@record
class Entry:
    """The recorded numbers of one library."""

    machine: str
    page_size: int
    relro: str
    textrel: bool
    totals: Mapping[str, int]
    sections: Mapping[str, SectionEntry]
    symbols: Mapping[str, SymbolEntry]
    # GOT/PLT slots by symbol name: (external | own_export, sections, bytes); None in an
    # entry recorded before they were.
    got_slots: Mapping[str, tuple[str, str, int]] | None = None
    # What the file tells of how it was built (see build_configuration); None: not recorded.
    build: Mapping[str, Any] | None = None

    def bytes_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sections.values():
            if s.kind != "readonly":
                out[s.kind] = out.get(s.kind, 0) + s.bytes
        return out


Baseline = Mapping[str, Entry]  # library name -> entry


# --- from the data model ------------------------------------------------------------------


def library_totals(lib: Library) -> dict[str, int]:
    return {
        "relocated_pages": lib.pages.relocated,
        "load_dirty_pages": lib.pages.load_dirty,
        "relocations": lib.relocations.total,
        "symbolic_relocations": lib.relocations.by_class.get("symbolic", 0),
        "static_initializers": lib.static_initializers,
        "writable_bytes": lib.writable_bytes,
        "zero_fill_bytes": lib.zero_fill_bytes,
    }


_GCC_LOCAL_SUFFIX = re.compile(r"(?:\.\d+)+$")


def stable_name(sym: Symbol) -> str:
    """The key a symbol is recorded under: its raw name, except for a function-local static,
    whose name each compiler decorates its own way (GCC `version.0`, clang
    `cJSON_Version.version`): both become `version`, so another compiler or a renumbering
    does not turn the same object into a new symbol."""
    name = sym.name
    if sym.binding != "LOCAL" or sym.type not in ("OBJECT", "TLS") or "." not in name[1:]:
        return name
    bare = _GCC_LOCAL_SUFFIX.sub("", name)
    if bare != name:
        return bare or name
    head, _, tail = name.rpartition(".")
    # clang: `function.variable`, both C identifiers (a C++ local static is mangled instead).
    if head and tail and head.replace("_", "a").isalnum() and tail.replace("_", "a").isalnum():
        return tail
    return name


def user_relocations(sections: Mapping[str, SectionEntry]) -> int:
    """Relocations into the writable data the library's own code defines (not GOT, .dynamic)."""
    return sum(s.relocations for s in sections.values() if s.kind in USER_SECTION_KINDS)


def metric(entry: Entry, name: str) -> int:
    """A regression metric of an entry: a recorded total, or one derived from its sections."""
    if name == "data_relocations":
        return user_relocations(entry.sections)
    return entry.totals[name]


# Compiler flags of a DW_AT_producer string that change the layout of writable data.
_LAYOUT_FLAG = re.compile(r"^-(?:O\S*|f(?:no-)?(?:pic|PIC|pie|PIE|data-sections|common|"
                          r"semantic-interposition|visibility=\S+)|m\S+)$")


def producer_flags(producers: Sequence[str]) -> list[str]:
    """The layout-relevant flags (-O2, -fPIC, -march=...) of the DW_AT_producer strings of a
    library's debug info (Library.producers), sorted and unique."""
    flags = {token for p in producers for token in p.split() if _LAYOUT_FLAG.match(token)}
    return sorted(flags)


def build_configuration(lib: Library) -> dict[str, Any]:
    """How the library was built, as far as the file tells: compilers and linker
    (.comment), BIND_NOW, and the compiler flags its debug info records (DW_AT_producer)."""
    return {"comment": list(lib.build_comment), "bind_now": lib.bind_now,
            **({"flags": producer_flags(lib.producers)} if lib.producers else {})}


def configuration_change(old: Entry, lib: Library) -> str | None:
    """One line naming how this build's configuration differs from the entry's, or None."""
    if old.build is None:
        return None
    new = build_configuration(lib)
    parts = []
    if old.build.get("comment") != new["comment"]:
        before = "; ".join(old.build.get("comment") or ["unknown"])
        parts.append(f"toolchain {before} -> {'; '.join(new['comment']) or 'unknown'}")
    if old.build.get("bind_now") != new["bind_now"]:
        parts.append(f"BIND_NOW {'on' if old.build.get('bind_now') else 'off'} -> "
                     f"{'on' if new['bind_now'] else 'off'}")
    if "flags" in old.build and "flags" in new and old.build["flags"] != new["flags"]:
        parts.append(f"flags {' '.join(old.build['flags'])} -> {' '.join(new['flags'])}")
    return ", ".join(parts) or None


def entry_from_library(lib: Library) -> Entry:
    sections: dict[str, SectionEntry] = {}
    for s in lib.sections:
        seen = sections.get(s.name)
        sections[s.name] = SectionEntry(kind=s.kind, bytes=s.size + (seen.bytes if seen else 0),
                                        relocations=s.relocations
                                        + (seen.relocations if seen else 0))
    symbols: dict[str, SymbolEntry] = {}
    zero_fill = {s.name for s in lib.sections if s.kind in ("bss", "tbss")}
    for sym in lib.symbols:
        if not (sym.size or sym.relocations):
            continue
        if not sym.relocations and sym.section in zero_fill:
            continue  # costs nothing until written: not worth a line of every review
        if sym.unattributed and not sym.relocations:
            continue  # padding and bytes no symbol covers: never an "added symbol"
        key = stable_name(sym)
        old = symbols.get(key)
        if old is None:
            readable = sym.demangled if sym.demangled and sym.demangled != sym.name else None
            symbols[key] = SymbolEntry(sym.section, sym.size, sym.relocations,
                                       demangled=readable)
        else:
            section = ",".join(sorted(set(old.section.split(",")) | {sym.section}))
            symbols[key] = SymbolEntry(section, old.bytes + sym.size,
                                       old.relocations + sym.relocations, old.copies + 1,
                                       old.demangled)
    # Slots not measured (a library read back from a report) are unknown, not "none".
    got = None if lib.got_slots is None else _slot_entries(lib.got_slots, lib.word_size)
    return Entry(machine=lib.machine, page_size=lib.page_size, relro=lib.relro,
                 textrel=lib.textrel, totals=library_totals(lib), sections=sections,
                 symbols=symbols, got_slots=got, build=build_configuration(lib))


def _slot_entries(slots: tuple[tuple[str, str, str], ...], word_size: int
                  ) -> dict[str, tuple[str, str, int]]:
    """Per slot name: its kind, the sections holding its slots, and their bytes."""
    got: dict[str, tuple[str, str, int]] = {}
    for name, kind, section in slots:
        seen = got.get(name)
        where = section if seen is None else ",".join(sorted({*seen[1].split(","), section}))
        got[name] = (kind, where, (seen[2] if seen else 0) + word_size)
    return got


# --- text form ----------------------------------------------------------------------------


def _entry_to_dict(e: Entry) -> dict[str, Any]:
    return {
        "machine": e.machine,
        "page_size": e.page_size,
        "relro": e.relro,
        "textrel": e.textrel,
        "totals": dict(e.totals),
        "sections": {name: {"kind": s.kind, "bytes": s.bytes, "relocations": s.relocations}
                     for name, s in e.sections.items()},
        "symbols": {name: {"section": s.section, "bytes": s.bytes, "relocations": s.relocations,
                           **({"copies": s.copies} if s.copies != 1 else {}),
                           **({"demangled": s.demangled} if s.demangled else {})}
                    for name, s in e.symbols.items()},
        **({} if e.build is None else {"build": dict(e.build)}),
        **({} if e.got_slots is None else {"got_slots": {
            name: {"kind": kind, "section": section, "bytes": size}
            for name, (kind, section, size) in e.got_slots.items()}}),
    }


def _inline(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def _block(indent: str, rows: list[str]) -> str:
    """A JSON object from already formatted `"key": value` rows, closed at `indent`."""
    if not rows:
        return "{}"
    return "{\n" + ",\n".join(rows) + "\n" + indent + "}"


def dumps(baseline: Baseline) -> str:
    """The file's text: deterministic, one line per section and symbol, trailing newline."""
    libraries = []
    for name in sorted(baseline):
        d = _entry_to_dict(baseline[name])
        fields = []
        for key in sorted(d):
            value = d[key]
            if isinstance(value, dict):
                rows = [f"        {_inline(k)}: {_inline(value[k])}" for k in sorted(value)]
                value_text = _block("      ", rows)
            else:
                value_text = _inline(value)
            fields.append(f"      {_inline(key)}: {value_text}")
        libraries.append(f"    {_inline(name)}: {_block('    ', fields)}")
    top = [f'  "format_version": {FORMAT_VERSION}', f'  "libraries": {_block("  ", libraries)}']
    return _block("", top) + "\n"


class _Corrupt(Exception):
    pass


def _expect(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise _Corrupt(f"{where}: {what}")


def _int(d: Mapping[str, Any], key: str, where: str) -> int:
    value = d.get(key)
    _expect(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"{where}.{key}", "expected a count (integer >= 0)")
    return value  # type: ignore[return-value]


def _str(d: Mapping[str, Any], key: str, where: str) -> str:
    value = d.get(key)
    _expect(isinstance(value, str) and bool(value), f"{where}.{key}", "expected a string")
    return value  # type: ignore[return-value]


def _object(value: Any, where: str, keys: set[str] | None = None,
            optional: frozenset[str] = frozenset()) -> Mapping[str, Any]:
    _expect(isinstance(value, dict), where, "expected an object")
    if keys is not None:
        missing = keys - set(value)
        extra = set(value) - keys - optional
        _expect(not missing, where, "missing " + ", ".join(sorted(missing)))
        _expect(not extra, where, "unknown field " + ", ".join(sorted(extra)))
    return value


_ENTRY_KEYS = {"machine", "page_size", "relro", "textrel", "totals", "sections", "symbols"}


def _got_slots(d: Any, where: str) -> dict[str, tuple[str, str, int]]:
    out = {}
    for name, slot in _object(d, where).items():
        at = f"{where}[{name!r}]"
        slot = _object(slot, at, {"kind", "section", "bytes"})
        kind = _str(slot, "kind", at)
        _expect(kind in ("external", "own_export"), f"{at}.kind", f"unknown kind {kind!r}")
        out[name] = (kind, _str(slot, "section", at), _int(slot, "bytes", at))
    return out


def _build(d: Any, where: str) -> dict[str, Any]:
    d = _object(d, where, {"comment", "bind_now"}, frozenset({"flags"}))
    for key in ("comment", *(("flags",) if "flags" in d else ())):
        _expect(isinstance(d[key], list) and all(isinstance(x, str) for x in d[key]),
                f"{where}.{key}", "expected a list of strings")
    _expect(isinstance(d["bind_now"], bool), f"{where}.bind_now", "expected true or false")
    return dict(d)


def _entry_from_dict(d: Any, where: str) -> Entry:
    d = _object(d, where, _ENTRY_KEYS, frozenset({"got_slots", "build"}))
    totals_d = _object(d["totals"], f"{where}.totals", set(TOTAL_METRICS))
    totals = {m: _int(totals_d, m, f"{where}.totals") for m in TOTAL_METRICS}
    sections = {}
    for name, s in _object(d["sections"], f"{where}.sections").items():
        at = f"{where}.sections[{name!r}]"
        s = _object(s, at, {"kind", "bytes", "relocations"})
        kind = _str(s, "kind", at)
        _expect(kind in SECTION_KINDS, f"{at}.kind", f"unknown section kind {kind!r}")
        sections[name] = SectionEntry(kind, _int(s, "bytes", at), _int(s, "relocations", at))
    symbols = {}
    for name, s in _object(d["symbols"], f"{where}.symbols").items():
        at = f"{where}.symbols[{name!r}]"
        s = _object(s, at, {"section", "bytes", "relocations"},
                    frozenset({"copies", "demangled"}))
        copies = _int(s, "copies", at) if "copies" in s else 1
        demangled = _str(s, "demangled", at) if "demangled" in s else None
        symbols[name] = SymbolEntry(_str(s, "section", at), _int(s, "bytes", at),
                                    _int(s, "relocations", at), copies, demangled)
    relro = _str(d, "relro", where)
    _expect(relro in RELRO_ORDER, f"{where}.relro", f"unknown RELRO {relro!r}")
    _expect(isinstance(d["textrel"], bool), f"{where}.textrel", "expected true or false")
    page_size = _int(d, "page_size", where)
    _expect(page_size > 0, f"{where}.page_size", "must be positive")
    got = _got_slots(d["got_slots"], f"{where}.got_slots") if "got_slots" in d else None
    build = _build(d["build"], f"{where}.build") if "build" in d else None
    return Entry(machine=_str(d, "machine", where), page_size=page_size, relro=relro,
                 textrel=d["textrel"], totals=totals, sections=sections, symbols=symbols,
                 got_slots=got, build=build)


_ADVICE = "restore it from version control, or delete it and run `relrocheck --baseline update`"


_CONFLICT_MARKERS = (b"<<<<<<<", b"=======", b">>>>>>>", b"|||||||")
_LIBRARY_LINE = re.compile(rb'^    ("(?:[^"\\]|\\.)*"): [{]')


def _merge_conflict(raw: bytes) -> tuple[int, list[str]] | None:
    """(first marker line, libraries whose entries the conflict touches), if git left its
    conflict markers in the file."""
    first = 0
    libraries: list[str] = []
    current: str | None = None
    inside = False
    for number, line in enumerate(raw.splitlines(), 1):
        match = _LIBRARY_LINE.match(line)
        if match:
            try:
                current = json.loads(match.group(1))
            except ValueError:
                current = None
        if line.startswith(_CONFLICT_MARKERS) and (
                line[:7] != b"=======" or inside):
            first = first or number
            inside = not line.startswith(b">>>>>>>")
        if (inside or line.startswith(b">>>>>>>")) and current and current not in libraries:
            libraries.append(current)
    return (first, libraries) if first else None


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Corrupt(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse(text: str | bytes, path: str) -> dict[str, Entry]:
    """Entries of a baseline file's text; BaselineError naming what is wrong."""
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    conflict = _merge_conflict(raw) if b"\n<<<<<<<" in b"\n" + raw else None
    if conflict is not None:
        line, libraries = conflict
        libraries = [printable(n) for n in libraries]
        which = (" (entries of " + ", ".join(libraries) + ")") if libraries else ""
        again = " ".join(libraries) if libraries else "LIB..."
        raise BaselineError(f"unresolved git merge conflict at line {line}{which}; resolve it "
                            "by keeping either side of each conflicting block (delete the "
                            "other side and the <<<<<<< ======= >>>>>>> lines), then run "
                            f"`relrocheck --baseline update {again}` on the merged build; do "
                            "not delete the file: it holds every other library's entry", path)
    try:
        data = json.loads(text, object_pairs_hook=_refuse_duplicates)
    except _Corrupt as exc:
        raise BaselineError(f"corrupt baseline ({exc}); {_ADVICE}", path) from None
    except RecursionError:
        raise BaselineError(f"corrupt baseline (nested too deeply); {_ADVICE}", path) from None
    except UnicodeDecodeError:
        raise BaselineError(f"corrupt baseline (not UTF-8 text); {_ADVICE}", path) from None
    except json.JSONDecodeError as exc:
        # Every baseline this tool writes is one object: a start without its end was cut short.
        stripped = text.strip() if isinstance(text, str) else text.strip().decode("latin-1")
        if not stripped:
            raise BaselineError(f"empty baseline file; {_ADVICE}", path) from None
        whole = stripped.startswith("{") and stripped.endswith("}")
        what = "truncated" if stripped.startswith("{") and not whole else "corrupt"
        raise BaselineError(f"{what} baseline (invalid JSON at line {exc.lineno} column "
                            f"{exc.colno}: {exc.msg}); {_ADVICE}", path) from None
    except ValueError:
        # int() refuses more digits than sys.get_int_max_str_digits(): no count is that long.
        raise BaselineError(f"corrupt baseline (a number too long to read); {_ADVICE}",
                            path) from None
    return from_json(data, path)


def from_json(data: Any, path: str) -> dict[str, Entry]:
    """Entries of a baseline file already decoded from JSON; BaselineError if it is not one."""
    if not isinstance(data, dict) or "format_version" not in data:
        raise BaselineError(f"not a relrocheck baseline (no format_version); {_ADVICE}", path)
    version = data["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BaselineError(f"corrupt baseline (format_version {version!r}); {_ADVICE}", path)
    if version > FORMAT_VERSION:
        raise BaselineError(f"baseline format version {version} is newer than this relrocheck "
                            f"understands ({FORMAT_VERSION}); upgrade relrocheck", path)
    try:
        _object(data, "baseline", {"format_version", "libraries"})
        libraries = _object(data["libraries"], "libraries")
        return {name: _entry_from_dict(entry, f"libraries[{name!r}]")
                for name, entry in libraries.items()}
    except _Corrupt as exc:
        raise BaselineError(f"corrupt baseline ({exc}); {_ADVICE}", path) from None


def _read_bytes(path: str) -> bytes | None:
    try:
        return read_regular_file(path)
    except FileNotFoundError:
        return None


def read(path: str) -> dict[str, Entry] | None:
    """The baseline at `path`, or None when the file does not exist."""
    try:
        raw = _read_bytes(path)
    except OSError as exc:
        raise BaselineError(f"cannot read baseline: {exc.strerror or exc}", path) from None
    return None if raw is None else parse(raw, path)


# --- writing ------------------------------------------------------------------------------


@contextmanager
def locked(path: str) -> Iterator[None]:
    """Exclusive lock for a read-modify-write of the baseline at `path`.

    The lock is taken on the baseline's folder, not on the file: the file is replaced by
    rename, so a lock on its old inode would not exclude a writer that opened the new one, and
    a sidecar lock file would be left behind in the user's source tree. flock(2) works on a
    directory's descriptor; other writers of other files in that folder merely wait their turn.
    """
    import fcntl

    folder = os.path.dirname(os.path.realpath(path)) or "."
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise BaselineError(f"cannot lock the baseline's folder {folder}: "
                            f"{exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def make_parent_folder(path: str) -> None:
    """Create the folders `path` needs; NotADirectoryError when one of them is a file."""
    folder = os.path.dirname(path)
    if not folder:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:  # makedirs' word for "a file is in the way"
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder) from None


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: str, text: str) -> None:
    """Replace `path` with `text`: readers see the old file or the new one, never a part."""
    import tempfile

    folder = os.path.dirname(path) or "."
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = _new_file_mode()
    # The writer's process id is in the name: a later update can tell a leftover of an
    # interrupted writer (see remove_stale_temporaries) from a file being written.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.{os.getpid()}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    except OSError:
        pass
    finally:
        os.close(dir_fd)


STALE_TEMPORARY_SECONDS = 600


def remove_stale_temporaries(path: str, now: float | None = None) -> list[str]:
    """Remove what interrupted updates left beside the baseline at `path`; the names removed.

    Called under the lock. Only files named like write_atomically's temporaries are touched,
    and only those whose writer process is gone or that are older than ten minutes (a writer
    of an older relrocheck, without the process id in the name, or without the lock).
    """
    import time

    folder = os.path.dirname(path) or "."
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.") + r"(?:(\d+)\.)?[^/]*\.tmp")
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if not match:
            continue
        full = os.path.join(folder, name)
        try:
            info = os.lstat(full)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        writer_gone = match.group(1) is not None and not _process_alive(int(match.group(1)))
        if writer_gone or now - info.st_mtime > STALE_TEMPORARY_SECONDS:
            try:
                os.unlink(full)
                removed.append(name)
            except OSError:
                pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes under the lock only: any file of ours is left over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a number no process has: keep it to be safe
    return True


def update(path: str, entries: Mapping[str, Entry], prune: bool = False,
           pruned: list[str] | None = None) -> dict[str, Entry | None]:
    """Replace the entries of `entries`' libraries, keep every other (with `prune`, drop
    every other, their names appended to `pruned`); return the old ones.

    The file is written only when its text changes, so an update that accepts nothing new
    leaves its modification time alone (and build tools do not rerun every check). A symlink
    is followed: the file it points to is replaced, the link stays.
    """
    path = os.path.realpath(path)
    try:
        make_parent_folder(path)
        with locked(path):
            remove_stale_temporaries(path)
            old_raw = _read_bytes(path)
            current = parse(old_raw, path) if old_raw is not None else {}
            previous = {name: current.get(name) for name in entries}
            merged = {**current, **entries}
            if prune:
                gone = sorted(set(current) - set(entries))
                for name in gone:
                    del merged[name]
                if pruned is not None:
                    pruned.extend(gone)
            text = dumps(merged)
            if old_raw is None or old_raw != text.encode("utf-8"):
                write_atomically(path, text)
            return previous
    except OSError as exc:
        raise BaselineError(f"cannot write baseline: {exc.strerror or exc}", path) from None
