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
