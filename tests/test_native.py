"""The compiled kernels (kernels/) against their pure-Python twins.

Each kernel is held to its twin on random columns, and whole reports of libraries built
here for every architecture and relocation encoding the tests know are compared byte for
byte with RELROCHECK_PURE_PYTHON=1 and without: the twins define the results, the kernels
only their speed.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from array import array
from pathlib import Path

import pytest
from libbuild import (
    CROSS_TARGETS,
    BuildError,
    build_library,
    fixture,
    have_cross,
    sstrip_copy,
    strip_copy,
)

from relrocheck import native, reloctables
from relrocheck.attribution import attribute_python
from relrocheck.model import RELOCATION_CLASSES, TARGET_KINDS
from relrocheck.reloctables import Table

kernels = native.kernels
needs_kernels = pytest.mark.skipif(kernels is None, reason="the compiled kernels are not built")


def test_the_kernels_are_built_wherever_a_c_compiler_is() -> None:
    """A silent build failure would leave every comparison below skipped: where the install
    had a compiler and Python's headers, the kernels must be there (reinstall after
    installing them)."""
    import sysconfig

    if os.environ.get("RELROCHECK_PURE_PYTHON", "") not in ("", "0"):
        pytest.skip("RELROCHECK_PURE_PYTHON is set: the kernels are off on purpose")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the pure-Python twins run")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        pytest.skip("no Python.h (Debian python3-dev): the pure-Python twins run")
    assert kernels is not None, "relrocheck._kernels did not build: see pip's output"


def test_the_source_distribution_holds_every_kernel_source(tmp_path: Path) -> None:
    """An sdist missing a header would build without the kernels, silently (the extension
    is optional): every file of kernels/ must be in it."""
    import tarfile

    repo = Path(__file__).resolve().parent.parent
    # A copy without egg-info: setuptools would reuse the file list an earlier sdist wrote.
    source = tmp_path / "source"
    shutil.copytree(repo, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "*.so", ".*_cache"))
    proc = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir",
                           str(tmp_path)], cwd=source, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"setup.py sdist does not run here: {proc.stderr[-300:]}")
    (archive,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        shipped = {Path(name).name for name in tar.getnames() if "/kernels/" in name}
    expected = {p.name for p in (repo / "kernels").iterdir()}
    assert expected and shipped == expected


def test_pure_python_is_chosen_by_the_environment() -> None:
    code = "from relrocheck.native import kernels; print(kernels is None)"
    for value, expected in (("1", "True"), ("0", str(kernels is None)), ("", str(kernels is None))):
        env = {**os.environ, "RELROCHECK_PURE_PYTHON": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == expected, value


@needs_kernels
def test_leading_run_matches_its_twin() -> None:
    rng = random.Random(7)
    for _ in range(400):
        value = rng.choice([8, 0x25, 0xFFFFFFFF, 1 << 40])
        n = rng.randrange(0, 40)
        run = rng.randrange(0, n + 1)
        values = [value] * run + [rng.choice([value, 0, 9]) for _ in range(n - run)]
        for code in ("I", "Q"):
            if code == "I" and value > 0xFFFFFFFF:
                continue
            column = array(code, values)
            for seq in (column, memoryview(column), memoryview(column)[1:], values):
                for probe in (value, -1, 1 << 70):
                    assert kernels.leading_run(seq, probe) == \
                        reloctables.leading_run_python(seq, probe), (values, probe)


def _random_partition(rng: random.Random) -> tuple[list[int], list[int], int]:
    """Increasing interval starts (the first 0), each interval's owner (-1 for none, owners
    reappearing across intervals as a section remainder does), and the owner count."""
    owners = rng.randrange(1, 30)
    bounds, owner_of, position = [0], [-1], 0
    for _ in range(rng.randrange(0, 60)):
        position += rng.randrange(1, 5000)
        bounds.append(position)
        owner_of.append(rng.randrange(-1, owners))
    return bounds, owner_of, owners


@needs_kernels
@pytest.mark.parametrize("seed", range(8))
def test_attribution_matches_its_twin(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        bounds, owner_of, _ = _random_partition(rng)
        top = bounds[-1] + 6000
        tables = {}
        for cls in rng.sample(RELOCATION_CLASSES, rng.randrange(1, 4)):
            n = rng.choice([0, 1, 5, 50, 400])
            offsets = sorted(rng.randrange(top) for _ in range(n))
            kinds = bytes(rng.randrange(len(TARGET_KINDS)) for _ in range(n))
            column = rng.choice([array("Q", offsets), array("I", offsets), offsets])
            tables[cls] = Table(column, kinds)
        tables = {cls: tables[cls] for cls in RELOCATION_CLASSES if cls in tables}
        for shift in (0, 12, 16):
            assert kernels.attribute([(t.offsets, t.kinds) for t in tables.values()], bounds,
                                     owner_of, shift, tuple(tables), TARGET_KINDS) == \
                attribute_python(tables, bounds, owner_of, shift)


@needs_kernels
def test_attribution_refuses_inconsistent_columns_and_bounds_its_work() -> None:
    names = ("relative",)
    with pytest.raises(ValueError, match="differ in length"):
        kernels.attribute([(array("Q", [1, 2]), b"\x00")], [0], [-1], 12, names, TARGET_KINDS)
    with pytest.raises(ValueError, match="kind code"):
        kernels.attribute([(array("Q", [1]), b"\x09")], [0], [-1], 12, names, TARGET_KINDS)
    with pytest.raises(ValueError, match="do not match"):
        kernels.attribute([(array("Q", [1]), b"\x00")], [0, 5], [-1], 12, names, TARGET_KINDS)
    with pytest.raises(ValueError, match="not increasing"):
        kernels.attribute([(array("Q", [1]), b"\x00")], [0, 5, 5], [-1, 0, 1], 12, names,
                          TARGET_KINDS)
    # Offsets out of order (never made by the reader) are each bisected: counted, not lost.
    bounds = list(range(0, 200_000, 10))
    owner_of = list(range(len(bounds)))
    offsets = array("Q", [199_995, 5] * 50_000)
    stats, pages = kernels.attribute([(offsets, bytes(len(offsets)))], bounds, owner_of, 4,
                                     names, TARGET_KINDS)
    assert stats[0][0] == {"relative": 50_000} and stats[len(bounds) - 1][0] == \
        {"relative": 50_000}
    assert pages == {0, 199_995 >> 4}


@needs_kernels
@pytest.mark.parametrize("seed", range(4))
def test_page_counts_match_their_twin(seed: int) -> None:
    from relrocheck.measure import counts_per_page_python

    rng = random.Random(seed)
    for _ in range(100):
        tables = {}
        for cls in rng.sample(RELOCATION_CLASSES, rng.randrange(1, 4)):
            offsets = sorted(rng.randrange(1 << rng.choice([8, 16, 24]))
                             for _ in range(rng.choice([0, 1, 9, 300])))
            tables[cls] = Table(rng.choice([array("Q", offsets), array("I", offsets), offsets]),
                                bytes(len(offsets)))
        for shift in (0, 4, 12):
            pages = sorted({o >> shift for t in tables.values() for o in t.offsets})
            assert kernels.page_counts([t.offsets for t in tables.values()], pages, shift) \
                == counts_per_page_python(tables, pages, shift)


@needs_kernels
@pytest.mark.parametrize("seed", range(4))
def test_target_kinds_match_the_table_classifier(seed: int, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    from relrocheck import targets

    rng = random.Random(seed)
    for _ in range(60):
        spans, position = [], rng.randrange(0, 1 << 20)
        for _ in range(rng.randrange(0, 12)):
            position += rng.choice([0, 8, 1 << 12, 1 << 18])  # gaps, or none
            size = rng.choice([0, 1, 100, 1 << 16, 1 << 22])
            start = position - rng.choice([0, 0, 0, 4])  # now and then an overlap
            spans.append((start, start + size, rng.randrange(7)))
            position = start + size
        top = max(position, 1) * 2
        addresses = [rng.randrange(top) for _ in range(rng.choice([0, 5, 3000]))]
        compiled = targets.address_classifier(spans, 7)
        with monkeypatch.context() as patch:
            patch.setattr(targets, "kernels", None)
            table = targets.address_classifier(spans, 7)
        for column in (array("Q", addresses), memoryview(array("Q", addresses)), addresses):
            assert compiled(column) == table(column)
        if all(a < 1 << 32 for a in addresses):
            assert compiled(array("I", addresses)) == table(array("I", addresses))
    # A negative value (a list of signed addends) is left to the table classifier.
    assert targets.address_classifier([(0, 16, 1)], 7)([-8, 4]) == bytes([7, 1])


class _Section:
    def __init__(self, name: str) -> None:
        self.name = name


@needs_kernels
@pytest.mark.parametrize("seed", range(6))
def test_symbols_fold_into_owners_as_their_twin_folds_them(seed: int) -> None:
    from types import SimpleNamespace

    from relrocheck.measure import _BINDING_RANK_BYTES, _Measurement

    rng = random.Random(seed)
    shared = _Section(".data")
    # Section numbers 1 and 2 are one section (a debug file's, mapped by name).
    writable = {1: shared, 2: shared, 3: _Section(".data.rel.ro"), 4: _Section(".tdata")}
    number = {1: 0, 2: 0, 3: 1, 4: 2}
    for _ in range(80):
        n = rng.randrange(0, 60)
        base = rng.randrange(1 << 12)
        values = [base + rng.choice([0, 8, 16, 24, 100]) * rng.randrange(4) for _ in range(n)]
        sizes = [rng.choice([1, 8, 16, 24, 64, 200]) for _ in range(n)]
        infos = [rng.choice([0x01, 0x11, 0x21, 0x16, 0x06, 0xA1, 0x12]) for _ in range(n)]
        others = [rng.randrange(4) for _ in range(n)]
        shndxs = [rng.choice([1, 2, 3, 4]) for _ in range(n)]
        names = [rng.choice(["a", "b", "table", "x", "é"]) for _ in range(n)]
        tls_base = rng.choice([0, 1 << 16])
        expected = [(o.name, o.section, o.address, o.size, o.aliases) for o in
                    _Measurement._fold_python(SimpleNamespace(elf=None), names, values, sizes,
                                              infos, others, shndxs, writable, tls_base)]
        got = kernels.fold_symbols(array("Q", values), array("Q", sizes), array("B", infos),
                                   array("B", others), array("H", shndxs),
                                   array("I", [number[i] for i in shndxs]), names, tls_base,
                                   _BINDING_RANK_BYTES)
        assert [(names[i], writable[shndxs[i]], address, sizes[i], aliases)
                for i, address, aliases in got] == expected
    with pytest.raises(OverflowError):
        kernels.fold_symbols(array("Q", [(1 << 64) - 8]), array("Q", [8]), array("B", [0x16]),
                             array("B", [0]), array("H", [4]), array("I", [2]), ["t"], 1 << 16,
                             _BINDING_RANK_BYTES)


@needs_kernels
def test_ascii_names_are_the_names_or_none() -> None:
    rng = random.Random(11)
    for _ in range(300):
        blob = bytes(rng.choice(b"ab_Z9\x00\x00\x01\xc3\x7f ") for _ in range(rng.randrange(1, 60)))
        offsets = [rng.randrange(len(blob) + 2) for _ in range(rng.randrange(0, 9))]
        limit = rng.choice([3, 100])
        ends = [blob.find(b"\0", o) for o in offsets]
        plain = None if any(o >= len(blob) or e < 0 or e - o > limit
                            or any(not 0x20 <= c <= 0x7E for c in blob[o:e])
                            for o, e in zip(offsets, ends)) else [
            blob[o:e].decode() for o, e in zip(offsets, ends)]
        assert kernels.ascii_names(blob, array("I", offsets), limit) == plain, (blob, offsets)


@needs_kernels
def test_compress_matches_itertools() -> None:
    from relrocheck import columns

    rng = random.Random(5)
    for _ in range(200):
        n = rng.randrange(0, 70)
        selector = bytes(rng.choice([0, 0, 1, 7]) for _ in range(rng.randrange(0, 80)))
        for code in ("B", "H", "I", "Q"):
            column = array(code, [rng.randrange(1 << (8 * array(code).itemsize))
                                  for _ in range(n)])
            for seq in (column, memoryview(column), memoryview(column)[n // 3:]):
                got = columns.compressed(seq, selector)
                assert got == columns.compressed_python(seq, selector)
                assert got.typecode == code


@needs_kernels
def test_string_target_kernels_count_the_bytes_the_twin_reads() -> None:
    from relrocheck.stringtargets import _IS_TEXT, _IS_TEXT_OR_NUL

    rng = random.Random(3)
    for _ in range(300):
        blob = bytes(rng.choice(b"\x00\x01ab\xc3\xa9\x80 ") for _ in range(rng.randrange(3, 90)))
        targets = [rng.randrange(1 << 20) for _ in range(rng.randrange(0, 30))]
        start, end = rng.randrange(1 << 19), rng.randrange(1 << 19, 1 << 20)
        bias = rng.randrange(-(1 << 20), 60)
        inside = [t for t in targets if start <= t < end]
        assert kernels.target_span(array("Q", targets), start, end) == (
            (len(inside), min(inside), max(inside)) if inside else (0, 0, 0))
        places = [min(max(t + bias, 0), len(blob) - 3) for t in inside]
        expected = sum(_IS_TEXT_OR_NUL[blob[f]] & _IS_TEXT[blob[f + 1]]
                       & _IS_TEXT_OR_NUL[blob[f + 2]] for f in places)
        assert kernels.count_text(targets, start, end, blob, bias, _IS_TEXT,
                                  _IS_TEXT_OR_NUL) == expected
    huge = array("Q", [(1 << 64) - 1, 1 << 63])
    assert kernels.count_text(huge, 0, (1 << 64) - 1, b"\x00ab", 1 << 62, _IS_TEXT,
                              _IS_TEXT_OR_NUL) == 1  # clamped to the blob's last place


# --- whole reports, compiled against pure Python --------------------------------------------


def _report(path: Path, pure: bool) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "RELROCHECK_PURE_PYTHON": "1" if pure else "0"}
    return subprocess.run([sys.executable, "-m", "relrocheck", "report", "--top", "0",
                           "--format", "json", "--page-size", "4096,65536", str(path)],
                          env=env, capture_output=True)


def _assert_same_reports(path: Path) -> None:
    pure, compiled = _report(path, True), _report(path, False)
    assert pure.returncode == compiled.returncode == 0, pure.stderr + compiled.stderr
    assert b'"relocations"' in pure.stdout
    assert compiled.stdout == pure.stdout, path


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("native")


_HOST_FIXTURES = {
    "pointer_tables": ("pointer_tables.c", "c", ()),  # string tables: string-target counts
    "relr": ("pointer_tables.c", "c", ("-Wl,-z,pack-relative-relocs",)),
    "vtables": ("cxx_vtables.cpp", "c++", ()),
    "objects": ("stripped_objects.c", "c", ()),  # stripped below: probable objects
    "tls": ("tls.c", "c", ()),
}


@needs_kernels
@pytest.mark.parametrize("name", sorted(_HOST_FIXTURES))
def test_host_libraries_report_alike(build_dir: Path, name: str) -> None:
    source, lang, flags = _HOST_FIXTURES[name]
    try:
        lib = build_library(build_dir / name, name, fixture(source), lang=lang, flags=flags)
    except BuildError as exc:
        pytest.skip(f"the host toolchain cannot build it: {exc}")
    _assert_same_reports(lib)
    _assert_same_reports(strip_copy(lib))
    _assert_same_reports(sstrip_copy(lib, lib.with_name(f"{lib.stem}.sstripped.so")))


_LINKS = {
    "plain": (),
    "relr": ("-Wl,--pack-dyn-relocs=relr",),
    "android+relr": ("-Wl,--pack-dyn-relocs=android+relr",),
}


@needs_kernels
@pytest.mark.parametrize("link", sorted(_LINKS))
@pytest.mark.parametrize("target", [*CROSS_TARGETS, "mips64el-linux-gnuabi64",
                                    "mipsel-linux-gnu"])
def test_libraries_of_every_architecture_report_alike(build_dir: Path, target: str,
                                                      link: str) -> None:
    if not have_cross(target):
        pytest.skip(f"no clang/lld toolchain for {target}")
    flags = _LINKS[link]
    if flags and (target == "s390x-linux-gnu" or target.startswith("mips")):
        pytest.skip(f"{target} is linked without lld's packing options")
    try:
        lib = build_library(build_dir / target / link, "tables", fixture("pointer_tables.c"),
                            flags=flags, target=target)
    except BuildError as exc:
        pytest.skip(f"lld cannot link {link} for {target}: {exc}")
    _assert_same_reports(lib)


@needs_kernels
@pytest.mark.parametrize("name", ["libc.so.6", "libz.so.1", "libstdc++.so.6"])
def test_system_libraries_report_alike(name: str) -> None:
    path = Path("/usr/lib/x86_64-linux-gnu") / name
    if not path.is_file():
        pytest.skip(f"{path} is not on this machine")
    _assert_same_reports(path)
