"""An independent oracle: GNU binutils output (readelf, nm) parsed into plain Python values.

Tests compare relrocheck's numbers with what these tools print, never with relrocheck's own
earlier output (the pyelftools approach: the reference tool is the oracle). Nothing here
imports relrocheck or reads ELF bytes itself; every number comes from a readelf or nm
subprocess, so a bug in relrocheck's reader cannot hide in the oracle too.

Written against GNU readelf/nm 2.40 (Debian 12). Parsers are strict: a table whose parsed
entry count differs from the count readelf announces raises `OracleError` rather than
returning a silently short list.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple, TypeAlias, TypedDict

StrPath: TypeAlias = "str | os.PathLike[str]"

READELF = os.environ.get("READELF", "readelf")
NM = os.environ.get("NM", "nm")


class OracleError(Exception):
    """binutils printed something this oracle does not understand."""


# --- running the tools --------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _run_cached(argv: tuple[str, ...], _stamp: tuple[int, int, int]) -> str:
    # LC_ALL=C: readelf/nm translate their headers; the parsers match the English text.
    env = dict(os.environ, LC_ALL="C")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise OracleError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _run(tool: str, args: tuple[str, ...], path: StrPath) -> str:
    """Output of `tool args path`, cached per file version (tests query one file often)."""
    st = os.stat(path)
    return _run_cached((tool, *args, os.fspath(path)), (st.st_ino, st.st_size, st.st_mtime_ns))


# --- ELF header ---------------------------------------------------------------------------

# readelf's "Machine:" text -> the architecture's RELATIVE relocation name. RELR entries carry
# no type; the psABI defines each one as that architecture's RELATIVE relocation.
RELATIVE_TYPE_BY_MACHINE: dict[str, str] = {
    "Advanced Micro Devices X86-64": "R_X86_64_RELATIVE",
    "Intel 80386": "R_386_RELATIVE",
    "AArch64": "R_AARCH64_RELATIVE",
    "ARM": "R_ARM_RELATIVE",
    "RISC-V": "R_RISCV_RELATIVE",
    "PowerPC64": "R_PPC64_RELATIVE",
    "PowerPC": "R_PPC_RELATIVE",
    "IBM S/390": "R_390_RELATIVE",
    "LoongArch": "R_LARCH_RELATIVE",
    "Sparc v9": "R_SPARC_RELATIVE",
}


def elf_header(path: StrPath) -> dict[str, str]:
    """`readelf -hW` fields by name ("Class", "Data", "Type", "Machine", ...), as printed."""
    fields: dict[str, str] = {}
    for line in _run(READELF, ("-hW",), path).splitlines():
        key, sep, value = line.partition(":")
        if sep and line.startswith("  "):
            fields[key.strip()] = value.strip()
    if "Machine" not in fields:
        raise OracleError(f"{path}: no ELF header in readelf -h output")
    return fields


def relative_type(path: StrPath) -> str:
    """This file's architecture's RELATIVE relocation name (what one RELR entry means)."""
    machine = elf_header(path)["Machine"]
    try:
        return RELATIVE_TYPE_BY_MACHINE[machine]
    except KeyError:
        raise OracleError(f"{path}: no RELATIVE type known for machine {machine!r}") from None


# --- raw section contents -----------------------------------------------------------------

_HEXDUMP_RE = re.compile(r"^\s+0x[0-9a-f]+ (.*)$")
# readelf -x prints 16 bytes per line as four groups of 8 hex digits, each group followed by
# a space (missing bytes as spaces), then the bytes as ASCII. Slicing by column keeps ASCII
# that happens to look like hex out of the data.
_HEXDUMP_COLUMNS = 4 * (8 + 1)


def section_bytes(path: StrPath, name: str) -> bytes:
    """The contents of section `name`, from the `readelf -x` hex dump (file byte order)."""
    if name not in sections(path):
        raise OracleError(f"{path}: no section {name}")
    data = bytearray()
    for line in _run(READELF, ("-x", name), path).splitlines():
        m = _HEXDUMP_RE.match(line)
        if m:
            data.extend(bytes.fromhex(m.group(1)[:_HEXDUMP_COLUMNS].replace(" ", "")))
    return bytes(data)


# --- sections and segments ----------------------------------------------------------------


class SectionInfo(TypedDict):
    type: str  # SHT_ name without prefix, as readelf prints it: PROGBITS, NOBITS, ...
    address: int
    size: int
    flags: str  # readelf's flag letters: "WA", "AX", "WAT", ...


# [Nr] Name Type Address Off Size ES Flg Lk Inf Al; Flg may be empty.
_SECTION_RE = re.compile(
    r"^\s*\[\s*(\d+)\]\s+(\S*)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)"
    r"\s+([0-9a-f]+)\s+([A-Za-z]*)\s+(\d+)\s+(\d+)\s+(\d+)$"
)


def sections(path: StrPath) -> dict[str, SectionInfo]:
    """Sections by name from `readelf -SW` (the null section 0 is left out).

    Names are unique in linked output; should one repeat, the first (lowest index) wins.
    """
    result: dict[str, SectionInfo] = {}
    for line in _run(READELF, ("-SW",), path).splitlines():
        m = _SECTION_RE.match(line)
        if not m or m.group(1) == "0":
            continue
        name = m.group(2)
        if name not in result:
            result[name] = SectionInfo(
                type=m.group(3),
                address=int(m.group(4), 16),
                size=int(m.group(6), 16),
                flags=m.group(8),
            )
    return result


class SegmentInfo(TypedDict):
    type: str  # LOAD, DYNAMIC, TLS, GNU_RELRO, ...
    offset: int
    address: int  # p_vaddr
    file_size: int
    memory_size: int
    flags: str  # letters without readelf's padding: "R", "RE", "RW", "RWE"
    align: int


_SEGMENT_RE = re.compile(
    r"^\s+(\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)"
    r"\s+0x([0-9a-f]+)\s+([RWE ]+?)\s+0x([0-9a-f]+)$"
)


def segments(path: StrPath) -> list[SegmentInfo]:
    """Program headers from `readelf -lW`, in file order."""
    result: list[SegmentInfo] = []
    for line in _run(READELF, ("-lW",), path).splitlines():
        m = _SEGMENT_RE.match(line)
        if m:
            result.append(
                SegmentInfo(
                    type=m.group(1),
                    offset=int(m.group(2), 16),
                    address=int(m.group(3), 16),
                    file_size=int(m.group(5), 16),
                    memory_size=int(m.group(6), 16),
                    flags=m.group(7).replace(" ", ""),
                    align=int(m.group(8), 16),
                )
            )
    return result


def relro_range(path: StrPath) -> tuple[int, int] | None:
    """[start, end) of PT_GNU_RELRO, or None."""
    for seg in segments(path):
        if seg["type"] == "GNU_RELRO":
            return seg["address"], seg["address"] + seg["memory_size"]
    return None


# --- dynamic section ----------------------------------------------------------------------

_DYNAMIC_RE = re.compile(r"^\s*0x[0-9a-f]+\s+\((\S+)\)\s+(.*?)\s*$")
# Values readelf wraps in prose; the oracle keeps only the payload.
_DYNAMIC_VALUE_RES = (
    re.compile(r"^Library soname: \[(.*)\]$"),
    re.compile(r"^Shared library: \[(.*)\]$"),
    re.compile(r"^Library r(?:un)?path: \[(.*)\]$"),
    re.compile(r"^Flags: (.*)$"),
)


def dynamic(path: StrPath) -> dict[str, list[str]]:
    """Dynamic tags from `readelf -dW`: tag name -> values, in order (NEEDED repeats).

    Values are readelf's text with its prose removed: SONAME/NEEDED/RPATH/RUNPATH give the
    bracketed name, FLAGS and FLAGS_1 their space-separated flag names ("BIND_NOW TEXTREL",
    "NOW PIE"), everything else the raw text ("0x1000", "8 (bytes)"). An empty dict means
    the file has no dynamic section.
    """
    tags: dict[str, list[str]] = {}
    for line in _run(READELF, ("-dW",), path).splitlines():
        m = _DYNAMIC_RE.match(line)
        if not m:
            continue
        tag, value = m.group(1), m.group(2)
        for value_re in _DYNAMIC_VALUE_RES:
            vm = value_re.match(value)
            if vm:
                value = vm.group(1).strip()
                break
        tags.setdefault(tag, []).append(value)
    return tags


def dynamic_flags(path: StrPath) -> frozenset[str]:
    """Every DF_/DF_1_ flag name set in DT_FLAGS and DT_FLAGS_1, plus "TEXTREL" and
    "BIND_NOW" when the legacy standalone DT_TEXTREL / DT_BIND_NOW tags are present."""
    tags = dynamic(path)
    flags: set[str] = set()
    for tag in ("FLAGS", "FLAGS_1"):
        for value in tags.get(tag, []):
            flags.update(value.split())
    for tag in ("TEXTREL", "BIND_NOW"):
        if tag in tags:
            flags.add(tag)
    return frozenset(flags)


# --- relocations --------------------------------------------------------------------------


class Relocation(NamedTuple):
    table: str  # relocation section: .rela.dyn, .rel.plt, .relr.dyn, ...
    offset: int  # r_offset: the virtual address the loader writes
    type: str  # readelf's type name; RELR entries get the architecture's RELATIVE name
    symbol: str | None  # symbol name without @VERSION, None for symbol index 0
    addend: int | None  # RELA addend (signed); None for REL and RELR (implicit addend)


_TABLE_RE = re.compile(
    r"^Relocation section '(.+)' at offset 0x[0-9a-f]+ contains (\d+) entr(?:y|ies):$"
)
_RELR_COUNT_RE = re.compile(r"^\s*(\d+) offsets?$")
_HEX_LINE_RE = re.compile(r"^[0-9a-f]+$")
_MIPS_EXTRA_TYPE_RE = re.compile(r"^\s+Type[23]:\s+R_MIPS_\S+\s*$")
_ENTRY_RE = re.compile(r"^([0-9a-f]+)\s+([0-9a-f]+)\s+(\S+)(.*)$")
# The symbol value column is hex, or "name()" for an ifunc symbol (readelf shows the
# resolver's symbol instead of its address).
_VALUE = r"(?:[0-9a-f]+|\S+\(\))"
_RELA_SYMBOL_RE = re.compile(rf"^\s+{_VALUE}\s+(.*?)\s*([+-])\s+([0-9a-f]+)$")
_RELA_NO_SYMBOL_RE = re.compile(r"^\s+(-?)([0-9a-f]+)$")
_REL_SYMBOL_RE = re.compile(rf"^\s+{_VALUE}\s+(.*?)$")


def _strip_version(name: str) -> str | None:
    # readelf appends @VER / @@VER to versioned dynamic symbols; nm (run with
    # --without-symbol-versions) and relrocheck key symbols by the bare name.
    bare = name.split("@", 1)[0]
    return bare or None


def _parse_entry(table: str, is_rela: bool, line: str) -> Relocation:
    m = _ENTRY_RE.match(line)
    if not m:
        raise OracleError(f"unparsed relocation line in {table}: {line!r}")
    offset, type_name, rest = int(m.group(1), 16), m.group(3), m.group(4)
    if not rest.strip():
        # REL (or RELA with a zero addend never happens: readelf prints it) without symbol.
        return Relocation(table, offset, type_name, None, None)
    if is_rela:
        sm = _RELA_SYMBOL_RE.match(rest)
        if sm:
            addend = int(sm.group(3), 16) * (-1 if sm.group(2) == "-" else 1)
            return Relocation(table, offset, type_name, _strip_version(sm.group(1)), addend)
        nm_ = _RELA_NO_SYMBOL_RE.match(rest)
        if nm_:
            addend = int(nm_.group(2), 16) * (-1 if nm_.group(1) else 1)
            return Relocation(table, offset, type_name, None, addend)
    else:
        sm = _REL_SYMBOL_RE.match(rest)
        if sm:
            return Relocation(table, offset, type_name, _strip_version(sm.group(1)), None)
    raise OracleError(f"unparsed relocation line in {table}: {line!r}")


def relocations(path: StrPath) -> list[Relocation]:
    """Every dynamic relocation from `readelf -rW`, RELR entries decoded, in print order.

    readelf 2.40 prints a RELR section as its header ("contains N entries", N being the
    packed 64/32-bit words), a line "  M offsets" and then the M decoded addresses, one per
    line. Each address becomes one Relocation of the architecture's RELATIVE type with no
    symbol and no addend (RELR's addend is the word already stored at the address).
    """
    text = _run(READELF, ("-rW",), path)
    result: list[Relocation] = []
    table: str | None = None
    expected = 0
    parsed = 0
    is_rela = False
    relr = False
    relr_type: str | None = None

    def finish() -> None:
        if table is not None and parsed != expected:
            raise OracleError(
                f"{path}: {table}: readelf announced {expected} entries, parsed {parsed}"
            )

    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        tm = _TABLE_RE.match(line)
        if tm:
            finish()
            table, expected, parsed = tm.group(1), int(tm.group(2)), 0
            is_rela = relr = False
            continue
        if table is None:
            if line.startswith("There are no relocations"):
                continue
            raise OracleError(f"{path}: text outside a relocation table: {line!r}")
        if parsed == 0 and not relr:
            cm = _RELR_COUNT_RE.match(line)
            if cm:
                # The header's entry count is RELR words; the decoded count is what to check.
                relr, expected = True, int(cm.group(1))
                relr_type = relr_type or relative_type(path)
                continue
            if line.lstrip().startswith("Offset"):
                is_rela = "Addend" in line
                continue
        if _MIPS_EXTRA_TYPE_RE.match(line):
            # MIPS64 records pack three types; the 2nd and 3rd qualify the same write.
            continue
        if relr:
            if not _HEX_LINE_RE.match(line):
                raise OracleError(f"{path}: unexpected line in RELR table {table}: {line!r}")
            assert relr_type is not None
            result.append(Relocation(table, int(line, 16), relr_type, None, None))
        else:
            result.append(_parse_entry(table, is_rela, line))
        parsed += 1
    finish()
    return result


def relocation_type_counts(path: StrPath) -> Counter[str]:
    """Relocation type name -> count (RELR entries counted as the RELATIVE type)."""
    return Counter(r.type for r in relocations(path))


def relocation_total(path: StrPath) -> int:
    return len(relocations(path))


def relocation_table_counts(path: StrPath) -> Counter[str]:
    """Relocation section name -> count (a RELR section counts decoded addresses)."""
    return Counter(r.table for r in relocations(path))


def table_entries(path: StrPath) -> dict[str, int]:
    """Relocation section name -> the entry count in readelf's table header.

    For REL/RELA that is the number of relocations; for RELR it is the number of packed
    words (address and bitmap entries), not the number of relocations they encode.
    """
    result: dict[str, int] = {}
    for line in _run(READELF, ("-rW",), path).splitlines():
        tm = _TABLE_RE.match(line)
        if tm:
            result[tm.group(1)] = int(tm.group(2))
    return result


def relr_announced_offsets(path: StrPath) -> dict[str, int]:
    """RELR section name -> the "M offsets" count readelf prints before decoding."""
    result: dict[str, int] = {}
    table: str | None = None
    for line in _run(READELF, ("-rW",), path).splitlines():
        tm = _TABLE_RE.match(line)
        if tm:
            table = tm.group(1)
            continue
        cm = _RELR_COUNT_RE.match(line)
        if cm and table is not None:
            result[table] = int(cm.group(1))
    return result


def relocation_offsets(path: StrPath) -> list[int]:
    """Sorted addresses the loader writes (one per relocation; duplicates kept)."""
    return sorted(r.offset for r in relocations(path))


def pages_with_relocations(path: StrPath, page_size: int = 4096) -> int:
    """Distinct pages (offset // page_size) holding at least one relocation target."""
    return len({r.offset // page_size for r in relocations(path)})


# --- symbols ------------------------------------------------------------------------------


class SymbolInfo(TypedDict):
    name: str
    address: int  # st_value; for TLS symbols an offset in PT_TLS (see tls_segment)
    size: int
    type: str  # nm's sysv type column: OBJECT, FUNC, TLS, NOTYPE, ...
    section: str  # .data, .data.rel.ro, .tbss, *ABS*, ...
    cls: str  # nm's class letter: D, d, B, b, R, r, T, t, V, W, i, ...


def symbols(path: StrPath, dynamic: bool = False) -> list[SymbolInfo]:
    """Defined symbols from `nm -f sysv --defined-only` (`-D`: the dynamic table).

    The sysv format is used because it alone prints the section and the ELF symbol type.
    `nm` on a stripped file without `dynamic` prints "no symbols": the result is then [].
    """
    args = ["-f", "sysv", "--defined-only", "--without-symbol-versions"]
    if dynamic:
        args.append("-D")
    try:
        text = _run(NM, tuple(args), path)
    except OracleError as exc:
        if "no symbols" in str(exc):
            return []
        raise
    result: list[SymbolInfo] = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != 7:
            continue
        name, value, cls, type_, size, _line, section = (f.strip() for f in fields)
        if not value:
            continue
        result.append(
            SymbolInfo(
                name=name,
                address=int(value, 16),
                size=int(size, 16) if size else 0,
                type=type_,
                section=section,
                cls=cls,
            )
        )
    return result


def tls_segment(path: StrPath) -> SegmentInfo | None:
    """PT_TLS (its file part is the .tdata image, the rest .tbss), or None."""
    for seg in segments(path):
        if seg["type"] == "TLS":
            return seg
    return None


# Sections whose FUNC symbols point at a fixed-size function descriptor while st_size is
# the code's size. PowerPC64 ELFv1: entry address, TOC base, environment (3 doublewords).
_DESCRIPTOR_BYTES: dict[str, int] = {".opd": 24}


def relocations_per_symbol(
    path: StrPath, dynamic: bool = False, include_tls: bool = True
) -> dict[str, int]:
    """Symbol name -> relocation targets in [address, address + size), from nm + readelf.

    Only symbols with size > 0 in a real section count (absolute and zero-size symbols own
    no bytes). Aliases (two names, same bytes) each get the full count. Symbols sharing a
    name (static objects of different translation units) are summed under that name, each
    distinct (address, size) once.

    TLS symbols: nm prints st_value, which for STT_TLS is an offset in the TLS segment, not
    an address. With `include_tls` (the default) it is translated by adding PT_TLS p_vaddr,
    because pointers in `.tdata` are relocated inside that initialisation image at load
    time (real load-time writes, attributable to the TLS symbol). The range is clipped to
    the image (p_filesz): `.tbss` occupies no addresses, and the sections that follow
    `.tdata` lie where `.tbss` offsets would translate to, so `.tbss` symbols count 0.
    With `include_tls=False` TLS symbols are left out.

    PowerPC64 ELFv1 function symbols point at their descriptor in `.opd` but carry the
    size of the code; their range is the descriptor (see _DESCRIPTOR_BYTES).
    """
    offsets = relocation_offsets(path)
    tls = tls_segment(path)
    counts: dict[str, int] = {}
    seen: set[tuple[str, int, int]] = set()
    for sym in symbols(path, dynamic=dynamic):
        if sym["size"] <= 0 or sym["section"] in ("*ABS*", "*UND*", "*COM*"):
            continue
        start = sym["address"]
        size = sym["size"]
        if sym["type"] == "FUNC":
            size = _DESCRIPTOR_BYTES.get(sym["section"], size)
        end = start + size
        if sym["type"] == "TLS":
            if not include_tls or tls is None:
                continue
            image_end = tls["address"] + tls["file_size"]
            start, end = (
                min(start + tls["address"], image_end),
                min(end + tls["address"], image_end),
            )
        key = (sym["name"], start, end)
        if key in seen:
            continue
        seen.add(key)
        lo = bisect.bisect_left(offsets, start)
        hi = bisect.bisect_left(offsets, end)
        counts[sym["name"]] = counts.get(sym["name"], 0) + (hi - lo)
    return counts


def relocations_per_section(path: StrPath) -> Counter[str]:
    """Section name -> relocation targets inside it ("<none>" when no section holds one).

    Only sections with an address (SHF_ALLOC, address != 0) and not TLS NOBITS (.tbss
    overlaps the sections after it in the address space) are candidates.
    """
    spans = sorted(
        (info["address"], info["address"] + info["size"], name)
        for name, info in sections(path).items()
        if info["address"]
        and info["size"]
        and not ("T" in info["flags"] and info["type"] == "NOBITS")
    )
    starts = [s for s, _e, _n in spans]
    result: Counter[str] = Counter()
    for offset in relocation_offsets(path):
        i = bisect.bisect_right(starts, offset) - 1
        if i >= 0 and spans[i][0] <= offset < spans[i][1]:
            result[spans[i][2]] += 1
        else:
            result["<none>"] += 1
    return result


# --- llvm-readelf: the second oracle, for what GNU readelf 2.40 cannot decode ---------------

LLVM_READELF = os.environ.get("LLVM_READELF", "llvm-readelf")

# "Relocation section 'NAME' at offset 0x... contains N entries:" (counted tables), or
# "'NAME' relocation section at offset 0x... contains N bytes:" (--dyn-relocations, RELR).
_LLVM_COUNTED_RE = re.compile(
    r"^Relocation section '(.+)' at offset 0x[0-9a-f]+ contains (\d+) entr(?:y|ies):$")
_LLVM_BYTES_RE = re.compile(r"^'(.+)' relocation section at offset 0x[0-9a-f]+ contains \d+ bytes:$")
_LLVM_ENTRY_RE = re.compile(r"^([0-9a-f]{8,16})\s+[0-9a-f]+\s+(R_\S+)")


class LlvmRelocation(NamedTuple):
    table: str  # section name, or RELA/REL/RELR/PLT with --dyn-relocations
    offset: int
    type: str


def llvm_relocations(path: StrPath, dynamic: bool = False) -> list[LlvmRelocation]:
    """Every relocation `llvm-readelf -r` prints (Android APS2 and RELR decoded), or with
    `dynamic`, what `llvm-readelf --dyn-relocations` finds through the dynamic section.

    A counted table whose parsed entries differ from its announced count raises OracleError.
    """
    option = "--dyn-relocations" if dynamic else "-r"
    result: list[LlvmRelocation] = []
    table: str | None = None
    announced: int | None = None
    counts: Counter[str] = Counter()

    def finish() -> None:
        if table is not None and announced is not None and counts[table] != announced:
            raise OracleError(f"{path}: {table} announces {announced} entries, "
                              f"parsed {counts[table]}")

    for line in _run(LLVM_READELF, (option, "--wide"), path).splitlines():
        counted, sized = _LLVM_COUNTED_RE.match(line), _LLVM_BYTES_RE.match(line)
        if counted or sized:
            finish()
            table = (counted or sized).group(1)  # type: ignore[union-attr]
            announced = int(counted.group(2)) if counted else None
            continue
        m = _LLVM_ENTRY_RE.match(line)
        if m and table is not None:
            result.append(LlvmRelocation(table, int(m.group(1), 16), m.group(2)))
            counts[table] += 1
    finish()
    return result


# --- MIPS: the GOT the loader writes without relocation records -----------------------------

_GOT_ENTRY_RE = re.compile(r"^\s+([0-9a-f]+)\s+-?\d+\(gp\)\s+[0-9a-f]+")


def _primary_got_rows(path: StrPath) -> Iterator[tuple[str, list[str]]]:
    """(part, columns) of each entry of the "Primary GOT" listing of `readelf -A`; part is
    "reserved", "local" or "global", columns "Address Access Initial [Sym.Val. Type Ndx
    Name]"."""
    part: str | None = None
    seen_got = False
    for line in _run(READELF, ("-A",), path).splitlines():
        if line.startswith("Primary GOT"):
            seen_got = True
            continue
        if not seen_got:
            continue
        if line and not line.startswith(" "):
            break  # the next listing (PLT GOT, ...)
        for name in ("reserved", "local", "global"):
            if line.strip().lower().startswith(f"{name} entries"):
                part = name
        if part is not None and _GOT_ENTRY_RE.match(line):
            yield part, line.split()
    if not seen_got:
        raise OracleError(f"{path}: readelf -A lists no primary GOT")


def mips_primary_got(path: StrPath) -> dict[str, list[int]]:
    """Addresses of the primary GOT's entries by part ("reserved", "local", "global"), from
    the "Primary GOT" listing of `readelf -A`."""
    parts: dict[str, list[int]] = {"reserved": [], "local": [], "global": []}
    for part, columns in _primary_got_rows(path):
        parts[part].append(int(columns[0], 16))
    return parts


def mips_got_entries(path: StrPath) -> dict[int, tuple[int, str | None]]:
    """Every primary GOT entry's address -> (its initial value, the symbol name of a global
    entry, else None), from `readelf -A`."""
    # The name is the last column ("<OS specific>: 10" is a type of two words).
    return {int(columns[0], 16): (int(columns[2], 16),
                                  columns[-1] if part == "global" and len(columns) >= 7
                                  else None)
            for part, columns in _primary_got_rows(path)}


def owner_pages(path: StrPath, page_size: int = 4096) -> dict[str, set[int]]:
    """Owner -> pages its relocation targets touch, from readelf -rW, readelf -SW and nm.

    An owner is the nm symbol whose [address, address + size) holds the target (in a
    writable section; TLS symbols left out), else the section's remainder
    "<unattributed in SECTION>", else "<none>" for an address in no section.
    """
    secs = sections(path)
    writable = {name for name, info in secs.items() if "W" in info["flags"]}
    spans = sorted((info["address"], info["address"] + info["size"], name)
                   for name, info in secs.items()
                   if info["address"] and info["size"] and "A" in info["flags"]
                   and not ("T" in info["flags"] and info["type"] == "NOBITS"))
    syms = sorted((s["address"], s["address"] + s["size"], s["name"])
                  for s in symbols(path)
                  if s["size"] and s["section"] in writable and s["type"] != "TLS")
    starts = [start for start, _end, _name in syms]
    section_starts = [start for start, _end, _name in spans]
    pages: dict[str, set[int]] = {}
    for r in relocations(path):
        i = bisect.bisect_right(starts, r.offset) - 1
        if i >= 0 and syms[i][0] <= r.offset < syms[i][1]:
            owner = syms[i][2]
        else:
            j = bisect.bisect_right(section_starts, r.offset) - 1
            inside = j >= 0 and spans[j][0] <= r.offset < spans[j][1]
            owner = f"<unattributed in {spans[j][2]}>" if inside else "<none>"
        pages.setdefault(owner, set()).add(r.offset // page_size)
    return pages


def exclusive_pages(pages: dict[str, set[int]]) -> dict[str, int]:
    """Owner -> pages on which it alone relocates words (from `owner_pages`)."""
    owners = Counter(page for touched in pages.values() for page in touched)
    return {name: sum(1 for p in touched if owners[p] == 1) for name, touched in pages.items()}


# --- LIEF: a third reader, a library rather than a dumper (test-only: its import is slow) ----


def lief_relocations(path: StrPath) -> list[tuple[int, str]] | None:
    """(address, R_ type name) of every dynamic and PLT relocation LIEF decodes (APS2 and RELR
    included), or None when LIEF is not installed."""
    try:
        import lief  # imported only by the tests that use it: its import is slow
    except ImportError:
        return None
    binary = lief.parse(os.fspath(path))
    if binary is None:
        raise OracleError(f"{path}: LIEF cannot parse it")
    return [(r.address, "R_" + str(r.type).split(".", 1)[1]) for r in binary.relocations]
