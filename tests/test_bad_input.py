"""Bad input ends in one clear error line and exit code 2, never a traceback; the other
libraries on the command line are still reported."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from libbuild import build_library, fixture

from relrocheck.errors import ElfError
from relrocheck.measure import measure

LIBZ = Path("/usr/lib/x86_64-linux-gnu/libz.so.1")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relrocheck", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def good_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("good"), "pointer_tables",
                         fixture("pointer_tables.c"))


def _shdr_table(data: bytes) -> tuple[int, int, int]:
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x3A)
    return e_shoff, e_shentsize, e_shnum


def _section_index(data: bytes, name: str) -> int:
    e_shoff, entsize, count = _shdr_table(data)
    shstrndx, = struct.unpack_from("<H", data, 0x3E)
    str_off, = struct.unpack_from("<Q", data, e_shoff + shstrndx * entsize + 0x18)
    for i in range(count):
        name_off, = struct.unpack_from("<I", data, e_shoff + i * entsize)
        end = data.index(b"\0", str_off + name_off)
        if data[str_off + name_off:end].decode() == name:
            return i
    raise KeyError(name)


def _patch_section(data: bytes, name: str, field_offset: int, fmt: str, value: int) -> bytes:
    """A copy of an ELF64 LE file with one field of one section header replaced."""
    e_shoff, entsize, _count = _shdr_table(data)
    out = bytearray(data)
    struct.pack_into(fmt, out, e_shoff + _section_index(data, name) * entsize + field_offset, value)
    return bytes(out)


SH_OFFSET, SH_SIZE, SH_LINK, SH_ENTSIZE = 0x18, 0x20, 0x28, 0x38


def _broken_files(tmp: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words the error must contain)."""
    data = good.read_bytes()
    cases: dict[str, tuple[bytes | None, str]] = {
        "empty": (b"", "empty"),
        "not_elf": (b"#!/bin/sh\necho hello\n", "not an ELF file"),
        "truncated_ident": (data[:10], "truncated"),
        "truncated_header": (data[:40], "truncated"),
        "truncated_half": (data[:len(data) // 2], "past the end of the file"),
        "archive": (b"!<arch>\n" + b"x" * 100, "static archive"),
        "section_past_end": (_patch_section(data, ".rela.dyn", SH_OFFSET, "<Q", len(data) + 64),
                             "past the end of the file"),
        "section_size_huge": (_patch_section(data, ".dynsym", SH_SIZE, "<Q", 1 << 40),
                              "past the end of the file"),
        "bogus_entsize": (_patch_section(data, ".rela.dyn", SH_ENTSIZE, "<Q", 7),
                          "sh_entsize"),
        "bogus_link": (_patch_section(data, ".dynsym", SH_LINK, "<I", 9999), "out of range"),
        "bogus_reloc_link": (_patch_section(data, ".rela.dyn", SH_LINK, "<I", 0xFFFF),
                             "out of range"),
    }
    out = {}
    for name, (content, words) in cases.items():
        path = tmp / f"{name}.so"
        path.write_bytes(content or b"")
        out[name] = (path, words)
    obj = tmp / "object.o"
    subprocess.run(["cc", "-c", "-fPIC", "-o", str(obj), str(fixture("tls.c"))], check=True)
    out["object_file"] = (obj, "type REL")
    return out


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, good_lib: Path
           ) -> dict[str, tuple[Path, str]]:
    return _broken_files(tmp_path_factory.mktemp("broken"), good_lib)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="no such file"):
        measure(str(tmp_path / "missing.so"))
    with pytest.raises(ElfError, match="is a directory"):
        measure(str(tmp_path))


@pytest.mark.parametrize("case", [
    "empty", "not_elf", "truncated_ident", "truncated_header", "truncated_half", "archive",
    "section_past_end", "section_size_huge", "bogus_entsize", "bogus_link", "bogus_reloc_link",
    "object_file",
])
def test_each_broken_file_gives_one_error_line_and_exit_2(
        broken: dict[str, tuple[Path, str]], good_lib: Path, case: str) -> None:
    path, words = broken[case]
    proc = run_cli("report", str(path), str(good_lib))
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"relrocheck: error: {path}: ")
    assert words in lines[0]
    assert "Traceback" not in proc.stderr
    # The good library after it is still reported.
    assert "libpointer_tables.so" in proc.stdout and "names" in proc.stdout


def test_json_report_lists_errors_beside_good_libraries(
        broken: dict[str, tuple[Path, str]], good_lib: Path) -> None:
    path, _ = broken["truncated_half"]
    proc = run_cli("report", "--format", "json", str(good_lib), str(path))
    assert proc.returncode == 2
    document = json.loads(proc.stdout)
    assert [lib["name"] for lib in document["libraries"]] == ["libpointer_tables.so"]
    assert [e["path"] for e in document["errors"]] == [str(path)]


def test_usage_errors_exit_2_without_traceback(good_lib: Path) -> None:
    for args in (["report"], ["report", "--page-size", "1000", str(good_lib)],
                 ["report", "--top", "x", str(good_lib)], ["nonsense-command-or-file"]):
        proc = run_cli(*args)
        assert proc.returncode == 2, args
        assert "Traceback" not in proc.stderr


# -- fuzzing: hundreds of truncated and byte-mutated copies of real libraries ----------------

FUZZ_WORKER = textwrap.dedent("""
    import json, sys, time, traceback
    from relrocheck.errors import RelrocheckError
    from relrocheck.measure import measure
    results = {"ok": 0, "rejected": 0, "escaped": [], "slowest": 0.0}
    for path in sys.argv[1:]:
        start = time.perf_counter()
        try:
            measure(path)
            results["ok"] += 1
        except RelrocheckError as exc:
            if "Traceback" in str(exc) or not str(exc):
                results["escaped"].append([path, "empty or odd message: " + repr(str(exc))])
            results["rejected"] += 1
        except BaseException as exc:
            results["escaped"].append([path, traceback.format_exc(limit=3)])
        results["slowest"] = max(results["slowest"], time.perf_counter() - start)
    print(json.dumps(results))
""")


def _mutants(source: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = []
    for i in range(count):
        if i % 3 == 0:
            out.append(source[:rng.randrange(len(source))])
            continue
        data = bytearray(source)
        # Header tables are where a mutation changes how the file is read; bias toward them.
        e_shoff, entsize, shnum = _shdr_table(source)
        hot = [(0, 64), (64, 64 + 56 * 12), (e_shoff, e_shoff + entsize * shnum)]
        for _ in range(rng.randint(1, 8)):
            lo, hi = rng.choice(hot) if rng.random() < 0.7 else (0, len(data))
            pos = rng.randrange(lo, min(hi, len(data)))
            data[pos] = rng.choice((0, 0xFF, rng.randrange(256), data[pos] ^ (1 << rng.randrange(8))))
        out.append(bytes(data))
    return out


def _limit_memory() -> None:
    limit = 2 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_fuzzed_libraries_only_raise_the_tools_own_error(tmp_path: Path, good_lib: Path) -> None:
    rng = random.Random(20261125)
    sources = [good_lib.read_bytes()]
    if LIBZ.exists():
        sources.append(LIBZ.read_bytes())
    paths = []
    for n, source in enumerate(sources):
        for i, mutant in enumerate(_mutants(source, rng, 200)):
            path = tmp_path / f"m{n}_{i}.so"
            path.write_bytes(mutant)
            paths.append(str(path))
    proc = subprocess.run([sys.executable, "-c", FUZZ_WORKER, *paths], capture_output=True,
                          text=True, timeout=300, preexec_fn=_limit_memory)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    assert results["escaped"] == []
    assert results["ok"] + results["rejected"] == len(paths)
    assert results["rejected"] > len(paths) // 3  # the mutations really broke files
    # A hang or a runaway loop would show here long before the subprocess timeout.
    assert results["slowest"] < 10.0


def test_fuzzing_reaches_the_cli_as_one_line(tmp_path: Path, good_lib: Path) -> None:
    rng = random.Random(7)
    paths = []
    for i, mutant in enumerate(_mutants(good_lib.read_bytes(), rng, 30)):
        path = tmp_path / f"cli{i}.so"
        path.write_bytes(mutant)
        paths.append(str(path))
    proc = run_cli("report", "--format", "json", *paths)
    assert "Traceback" not in proc.stderr
    document = json.loads(proc.stdout)
    assert len(document["libraries"]) + len(document["errors"]) == len(paths)
    assert len(proc.stderr.splitlines()) == len(document["errors"])
    assert proc.returncode == (2 if document["errors"] else 0)


def test_unreadable_file(tmp_path: Path, good_lib: Path) -> None:
    if os.geteuid() == 0:
        # Root reads every file: measure as an unprivileged user, in a forked child.
        from unprivileged import in_child_as_nobody, shared_folder

        with shared_folder() as folder:
            path = folder / "secret.so"
            shutil.copy(good_lib, path)
            path.chmod(0)

            def refused() -> bool:
                try:
                    measure(str(path))
                except ElfError as exc:
                    return "cannot read" in str(exc)
                return False

            in_child_as_nobody(refused)
        return
    path = tmp_path / "secret.so"
    shutil.copy(good_lib, path)
    path.chmod(0)
    with pytest.raises(ElfError, match="cannot read"):
        measure(str(path))


# -- hostile input: work bounded by the bytes in the file, not by what its headers claim ------

import time  # noqa: E402

import oracle  # noqa: E402
from libbuild import BuildError, strip_copy  # noqa: E402

from relrocheck.elf import ElfFile  # noqa: E402
from relrocheck.relocdecode import decode_relr  # noqa: E402

PT_LOAD_TYPE = 1
# What a crafted case may cost: far below the minutes it cost before, with room for a busy CI.
TIME_LIMIT_S = 15.0
MEMORY_LIMIT = 1 << 30


def _limited(seconds: float = TIME_LIMIT_S) -> "object":
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        cpu = int(seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    return limit


def run_bounded(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """The CLI under a memory and CPU limit; its wall time."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "relrocheck", *args], capture_output=True,
                          text=True, timeout=120, preexec_fn=_limited())
    return proc, time.monotonic() - start


def assert_one_error_line(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("relrocheck: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def relr_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("relr")
    for flags in (["-Wl,-z,pack-relative-relocs"], ["-fuse-ld=lld", "-Wl,--pack-dyn-relocs=relr"]):
        try:
            lib = build_library(tmp, "pointer_tables", fixture("pointer_tables.c"), flags=flags)
        except BuildError:
            continue
        if ".relr.dyn" in oracle.sections(lib):
            return lib
    pytest.skip("no linker here writes RELR (-z pack-relative-relocs)")


def _section_header(data: bytes, name: str) -> tuple[int, int, int]:
    """(header offset, sh_offset, sh_size) of a section of an ELF64 LE file."""
    e_shoff, entsize, _count = _shdr_table(data)
    header = e_shoff + _section_index(data, name) * entsize
    sh_offset, sh_size = struct.unpack_from("<QQ", data, header + SH_OFFSET)
    return header, sh_offset, sh_size


def _with_table(data: bytes, name: str, table: bytes) -> bytes:
    """The file with section `name` moved to new bytes `table` appended at its end.

    The loader finds RELR through DT_RELR/DT_RELRSZ, which still name the old bytes; they are
    turned into DT_DEBUG entries, so that only the (crafted) section header tells the table.
    """
    header, _offset, _size = _section_header(data, name)
    out = bytearray(data)
    if name == ".relr.dyn":
        _dyn_header, dyn_offset, dyn_size = _section_header(data, ".dynamic")
        for at in range(dyn_offset, dyn_offset + dyn_size, 16):
            if struct.unpack_from("<q", out, at)[0] in (DT_RELRSZ, DT_RELR, DT_RELRENT):
                struct.pack_into("<q", out, at, DT_DEBUG)
    out += bytes(-len(out) % 8)
    struct.pack_into("<QQ", out, header + SH_OFFSET, len(out), len(table))
    return bytes(out + table)


DT_DEBUG, DT_RELRSZ, DT_RELR, DT_RELRENT = 21, 35, 36, 37


def _first_relr_address(data: bytes) -> int:
    _header, offset, _size = _section_header(data, ".relr.dyn")
    return struct.unpack_from("<Q", data, offset)[0]


def test_relr_bulk_decoder_matches_readelf_on_random_bitmaps(tmp_path: Path,
                                                             relr_lib: Path) -> None:
    """Random (well-formed) bitmaps over .data, decoded by readelf and by relrocheck."""
    data = relr_lib.read_bytes()
    _header, offset, size = _section_header(data, ".relr.dyn")
    rng = random.Random(99)
    first = _first_relr_address(data)
    words = [first] + [rng.getrandbits(64) | 1 for _ in range(size // 8 - 1)]
    out = bytearray(data)
    struct.pack_into(f"<{len(words)}Q", out, offset, *words)
    path = tmp_path / "random_relr.so"
    path.write_bytes(bytes(out))
    expected = [r.offset for r in oracle.relocations(path) if r.table == ".relr.dyn"]
    assert len(expected) > 20 * (len(words) - 1)  # the bitmaps really are full of bits
    assert list(decode_relr(words, 8)) == sorted(expected)


@pytest.mark.parametrize("mib", [1, 4])
def test_crafted_relr_table_of_full_bitmaps_is_refused_quickly(tmp_path: Path, relr_lib: Path,
                                                               mib: int) -> None:
    data = relr_lib.read_bytes()
    count = (mib << 20) // 8
    table = struct.pack("<Q", _first_relr_address(data)) + b"\xff" * 8 * (count - 1)
    path = tmp_path / f"relr_full_{mib}.so"
    path.write_bytes(_with_table(data, ".relr.dyn", table))
    proc, seconds = run_bounded("report", str(path))
    assert_one_error_line(proc, str(path), "RELR table encodes", "corrupt")
    assert seconds < TIME_LIMIT_S


@pytest.mark.parametrize("mib", [1, 4])
def test_crafted_relr_table_within_the_bound_is_measured_quickly(tmp_path: Path,
                                                                 relr_lib: Path,
                                                                 mib: int) -> None:
    """One bit per bitmap: as many addresses as words, marching far past every segment."""
    data = relr_lib.read_bytes()
    count = (mib << 20) // 8
    rng = random.Random(mib)
    bitmaps = [(1 << rng.randrange(1, 64)) | 1 for _ in range(count - 1)]
    table = struct.pack(f"<{count}Q", _first_relr_address(data), *bitmaps)
    path = tmp_path / f"relr_sparse_{mib}.so"
    path.write_bytes(_with_table(data, ".relr.dyn", table))
    proc, seconds = run_bounded("report", "--format", "json", str(path))
    assert proc.returncode in (0, 2), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:
        library = json.loads(proc.stdout)["libraries"][0]
        assert library["relocations"]["by_table"][".relr.dyn"] == count
    assert seconds < TIME_LIMIT_S


def _with_program_headers(data: bytes, count: int, extended: bool = False) -> bytes:
    """The file with its program headers copied into a table of `count` at its end; the
    added ones are small PT_LOADs far above the image. With `extended`, e_phnum is
    PN_XNUM and the count is in section 0's sh_info, as the ELF specification says."""
    e_phoff, = struct.unpack_from("<Q", data, 0x20)
    e_phnum, = struct.unpack_from("<H", data, 0x38)
    original = data[e_phoff:e_phoff + 56 * e_phnum]
    extra = b"".join(struct.pack("<IIQQQQQQ", PT_LOAD_TYPE, 4, 0, 0x7000_0000_0000 + i * 0x10000,
                                 0, 16, 16, 0x1000) for i in range(count - e_phnum))
    out = bytearray(data)
    out += bytes(-len(out) % 8)
    struct.pack_into("<Q", out, 0x20, len(out))
    if extended:
        struct.pack_into("<H", out, 0x38, 0xFFFF)
        e_shoff, _entsize, _n = _shdr_table(data)
        struct.pack_into("<I", out, e_shoff + 0x2C, count)  # section 0's sh_info
    else:
        struct.pack_into("<H", out, 0x38, count)
    return bytes(out + original + extra)


@pytest.mark.parametrize("count, extended", [(65535, False), (100000, True)])
def test_many_program_headers_are_measured_quickly(tmp_path: Path, relr_lib: Path,
                                                   count: int, extended: bool) -> None:
    path = tmp_path / f"phdrs_{count}.so"
    path.write_bytes(_with_program_headers(relr_lib.read_bytes(), count, extended))
    assert len(oracle.segments(path)) == count
    proc, seconds = run_bounded("report", "--format", "json", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    library = json.loads(proc.stdout)["libraries"][0]
    relr = sum(1 for r in oracle.relocations(path) if r.table == ".relr.dyn")
    assert library["relocations"]["by_table"][".relr.dyn"] == relr
    assert seconds < TIME_LIMIT_S


def test_nobits_build_id_note_has_no_build_id(tmp_path: Path, good_lib: Path) -> None:
    data = good_lib.read_bytes()
    if ".note.gnu.build-id" not in oracle.sections(good_lib):
        pytest.skip("the compiler here writes no build-id")
    header, _offset, _size = _section_header(data, ".note.gnu.build-id")
    out = bytearray(data)
    struct.pack_into("<I", out, header + 4, 8)  # sh_type = SHT_NOBITS
    path = tmp_path / "nobits_note.so"
    path.write_bytes(bytes(out))
    assert oracle.sections(path)[".note.gnu.build-id"]["type"] == "NOBITS"
    proc = run_cli("report", "--format", "json", str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["libraries"][0]["build_id"] is None


SPARSE_SIZE = 4 << 30


def _sparse_copy(tmp_path: Path, good: Path, name: str, section: str, what: str) -> Path:
    """good, grown to a sparse 4 GiB, with `section` (or its size only) reaching the end."""
    data = good.read_bytes()
    header, offset, _size = _section_header(data, section)
    out = bytearray(data)
    if what == "moved":  # the table's bytes live in the hole: all zeros
        start = SPARSE_SIZE - (1 << 30)
        # A whole number of symbols (24 bytes), so that a symbol table passes its checks.
        struct.pack_into("<QQ", out, header + SH_OFFSET, start, (1 << 30) // 24 * 24)
    else:  # the table keeps its bytes and claims the rest of the file
        struct.pack_into("<Q", out, header + SH_SIZE, (SPARSE_SIZE - offset) // 24 * 24)
    return _write_sparse(tmp_path / name, bytes(out), SPARSE_SIZE)


def _write_sparse(path: Path, data: bytes, size: int) -> Path:
    """`data`, then a hole up to `size` bytes; the test is skipped where files cannot be
    sparse."""
    path.write_bytes(data)
    try:
        os.truncate(path, size)
    except OSError as exc:
        pytest.skip(f"no sparse files here: {exc}")
    if os.stat(path).st_blocks * 512 > 64 << 20:
        path.unlink()
        pytest.skip("this file system does not keep files sparse")
    return path


@pytest.mark.parametrize("section, what, stripped", [
    (".shstrtab", "moved", False), (".shstrtab", "grown", False), (".dynstr", "moved", True),
    (".dynstr", "grown", True), (".note.gnu.build-id", "grown", False),
    (".dynsym", "moved", True), (".dynsym", "grown", True), (".symtab", "grown", False),
])
def test_sparse_4gib_file_costs_what_its_bytes_cost(tmp_path: Path, good_lib: Path,
                                                    section: str, what: str,
                                                    stripped: bool) -> None:
    """A table whose header claims GiB of a sparse file; stripped: .dynsym names symbols."""
    source = strip_copy(good_lib) if stripped else good_lib
    if section not in oracle.sections(source):
        pytest.skip(f"no {section} here")
    path = _sparse_copy(tmp_path, source, "sparse.so", section, what)
    try:
        proc, seconds = run_bounded("report", "--format", "json", str(path))
    finally:
        path.unlink()
    assert proc.returncode in (0, 1, 2), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    if proc.returncode == 2:
        assert_one_error_line(proc, str(path))
    assert seconds < TIME_LIMIT_S


def test_page_size_with_thousands_of_digits(good_lib: Path) -> None:
    for value in ("9" * 5000, "0x" + "f" * 3000, str(1 << 21), "256", "3000"):
        proc = run_cli("report", "--page-size", value, str(good_lib))
        assert proc.returncode == 2, value
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr) < 1000
        assert "power of two from 512 to 1048576" in proc.stderr.splitlines()[-1]
    assert run_cli("report", "--page-size", str(1 << 20), str(good_lib)).returncode == 0


def test_file_truncated_while_it_is_read(tmp_path: Path, good_lib: Path) -> None:
    path = tmp_path / "shrinking.so"
    shutil.copy(good_lib, path)
    with ElfFile(str(path)) as elf:
        dynsym = next(s for s in elf.sections if s.name == ".dynsym")
        os.truncate(path, dynsym.sh_offset + 8)
        with pytest.raises(ElfError, match="changed while it was being read"):
            elf.symbol_columns(dynsym)
        with pytest.raises(ElfError, match="changed while it was being read"):
            elf.check_unchanged()


def test_file_rewritten_while_it_is_measured_is_an_error(tmp_path: Path, good_lib: Path
                                                         ) -> None:
    path = tmp_path / "rewritten.so"
    shutil.copy(good_lib, path)
    with ElfFile(str(path)) as elf:
        with open(path, "ab") as f:
            f.write(b"\0" * 4096)
        with pytest.raises(ElfError, match="changed while it was being read"):
            elf.check_unchanged()


def test_fifo_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.so"
    os.mkfifo(fifo)
    for args in (["report", str(fifo)], ["scan", "--jobs", "1", str(tmp_path)]):
        proc = subprocess.run([sys.executable, "-m", "relrocheck", *args], capture_output=True,
                              text=True, timeout=60)
        assert "Traceback" not in proc.stderr
        assert proc.returncode in (0, 2), proc.stderr
    assert_one_error_line(run_cli("report", str(fifo)), "not a regular file")


def test_a_dead_scan_worker_loses_only_its_own_library(tmp_path: Path, good_lib: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers are forked, so a measure_one patched here is what they run: it kills its
    own process (as the OOM killer or a crash in C would) for one library."""
    import relrocheck.scan as scan_module

    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(40):
        shutil.copy(good_lib, tree / f"lib{i:02}.so")
    shutil.copy(good_lib, tree / "libkiller.so")
    real = scan_module.measure_one

    def dies_on_killer(path: str, *args: object, **kwargs: object) -> object:
        if path.endswith("libkiller.so"):
            os.kill(os.getpid(), 9)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_module, "measure_one", dies_on_killer)
    result = scan_module.scan([str(tree)], jobs=2)
    assert sorted(Path(lib.path).name for lib in result.libraries) == [
        f"lib{i:02}.so" for i in range(40)]
    assert [(Path(e.path).name, "worker process died" in e.message)
            for e in result.errors] == [("libkiller.so", True)]


def test_relocation_table_in_a_sparse_hole_costs_what_its_bytes_cost(tmp_path: Path,
                                                                     good_lib: Path) -> None:
    """DT_RELA moved to the end of the file, its DT_RELASZ claiming 3 GiB of a sparse hole
    more (the last PT_LOAD grown over them): the loader applies them all, the hole's as
    R_*_NONE entries that write nothing. They are counted from the hole's size, unread."""
    data = bytearray(good_lib.read_bytes())
    e_phoff, = struct.unpack_from("<Q", data, 0x20)
    e_phnum, = struct.unpack_from("<H", data, 0x38)
    headers = [e_phoff + 56 * i for i in range(e_phnum)]
    loads = [h for h in headers if struct.unpack_from("<I", data, h)[0] == PT_LOAD_TYPE]
    last = max(loads, key=lambda h: struct.unpack_from("<Q", data, h + 8)[0])
    p_offset, p_vaddr = struct.unpack_from("<QQ", data, last + 8)
    dynamic = next(h for h in headers if struct.unpack_from("<I", data, h)[0] == 2)
    dyn_offset, = struct.unpack_from("<Q", data, dynamic + 8)
    dyn_size, = struct.unpack_from("<Q", data, dynamic + 32)
    tags = {}
    for at in range(dyn_offset, dyn_offset + dyn_size, 16):
        tag, value = struct.unpack_from("<qQ", data, at)
        tags.setdefault(tag, at)
    rela_at, size_at = tags[7], tags[8]  # DT_RELA, DT_RELASZ
    old_vaddr, = struct.unpack_from("<Q", data, rela_at + 8)
    old_size, = struct.unpack_from("<Q", data, size_at + 8)
    old_offset = old_vaddr  # the first PT_LOAD maps the file from offset 0 at address 0
    records = bytes(data[old_offset:old_offset + old_size])
    data += bytes(-len(data) % 4096)
    table_offset = len(data)
    data += records
    hole = 3 << 30
    table_vaddr = p_vaddr + (table_offset - p_offset)
    struct.pack_into("<Q", data, rela_at + 8, table_vaddr)
    struct.pack_into("<Q", data, size_at + 8, old_size + hole)
    end = table_offset + old_size + hole
    struct.pack_into("<QQ", data, last + 32, end - p_offset, end - p_offset)  # p_filesz, p_memsz
    # The old place is no relocation table any more (else it would be read as one no tag
    # covers, as a static executable's .rela.iplt is).
    header, _, _ = _section_header(bytes(data), ".rela.dyn")
    struct.pack_into("<I", data, header + 4, 1)  # sh_type: PROGBITS
    path = _write_sparse(tmp_path / "sparse_rela.so", bytes(data), end)
    truth = oracle.relocations(good_lib)
    try:
        proc, seconds = run_bounded("report", "--format", "json", str(path))
    finally:
        path.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert seconds < TIME_LIMIT_S
    library = json.loads(proc.stdout)["libraries"][0]
    relocations = library["relocations"]
    assert relocations["no_ops"] == hole // 24
    assert relocations["by_type"]["R_X86_64_NONE"] == hole // 24
    assert relocations["total"] == len(truth) + hole // 24
    # The hole writes nothing: the pages written are the original's.
    assert library["pages"]["relocated"] == oracle.pages_with_relocations(good_lib)
