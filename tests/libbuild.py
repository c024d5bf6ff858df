"""Build real shared libraries at test time, for the host and for other architectures.

Tests measure libraries compiled from the C/C++ sources in tests/fixtures (or from source
text inline in a test), so every number is checked against what a real toolchain emitted.

Host builds use the system compiler (`cc -fPIC -shared`, `c++` for C++). Cross builds use
clang with lld and no C library (`-nostdlib`): nothing else needs installing. lld 14 has no
s390x backend, so that triple compiles with clang and links with binutils'
`s390x-linux-gnu-ld`. Use `have_cross(triple)` to skip a test when the toolchain is absent.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Triples the tests cover, as clang spells them.
CROSS_TARGETS: tuple[str, ...] = (
    "x86_64-linux-gnu",
    "i686-linux-gnu",
    "aarch64-linux-gnu",
    "armv7a-linux-gnueabihf",
    "riscv64-linux-gnu",
    "powerpc64-linux-gnu",
    "powerpc64le-linux-gnu",
    "s390x-linux-gnu",
)

# Triples lld cannot link: compile with clang -c, link with this GNU ld instead.
SEPARATE_LINKER: dict[str, str] = {
    "s390x-linux-gnu": "s390x-linux-gnu-ld",
}

_SUFFIX = {"c": ".c", "c++": ".cpp"}
_HOST_COMPILER = {"c": "cc", "c++": "c++"}
_CLANG = {"c": "clang", "c++": "clang++"}


class BuildError(RuntimeError):
    """A compiler or linker failed; the message holds the command and its stderr."""


def fixture(name: str) -> Path:
    """Path of a source file in tests/fixtures."""
    path = FIXTURES / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def _run(argv: Sequence[str]) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(argv)}\n{proc.stderr.strip()}")


def _source_file(tmp_dir: Path, name: str, source: str | Path, lang: str) -> Path:
    # A Path is an existing file; a str is source text (tests keep small cases inline).
    if isinstance(source, Path):
        return source
    src = tmp_dir / f"{name}{_SUFFIX[lang]}"
    src.write_text(source)
    return src


def _linker_args(flags: Sequence[str]) -> list[str]:
    """Compiler-driver -Wl,a,b flags as arguments for a linker run directly."""
    args: list[str] = []
    for flag in flags:
        if flag.startswith("-Wl,"):
            args.extend(flag[len("-Wl,") :].split(","))
    return args


def build_library(
    tmp_dir: str | os.PathLike[str],
    name: str,
    source: str | Path,
    lang: str = "c",
    flags: Sequence[str] = (),
    target: str | None = None,
    compiler: str | None = None,
) -> Path:
    """Compile `source` into `tmp_dir/lib<name>.so` (SONAME lib<name>.so) and return its path.

    `source` is a Path to a file (see `fixture`) or the source text itself. `flags` go to
    the compiler driver after the source (so -l and -Wl, work); they override the defaults
    (-O2). With `target`, the library is cross-built without a C library for that triple.
    `compiler` replaces the compiler executable (e.g. "clang" for a host build with lld).
    """
    if lang not in _SUFFIX:
        raise ValueError(f"unknown language {lang!r}")
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    src = _source_file(tmp, name, source, lang)
    out = tmp / f"lib{name}.so"
    soname = out.name

    if target is None:
        cc = compiler or _HOST_COMPILER[lang]
        _run(
            [
                cc,
                "-O2",
                "-fPIC",
                "-shared",
                f"-Wl,-soname,{soname}",
                "-o",
                str(out),
                str(src),
                *flags,
            ]
        )
        return out

    cc = compiler or _CLANG[lang]
    base = [cc, f"--target={target}", "-O2", "-fPIC"]
    linker = SEPARATE_LINKER.get(target)
    if linker is None:
        _run(
            [
                *base,
                "-shared",
                "-nostdlib",
                "-fuse-ld=lld",
                f"-Wl,-soname,{soname}",
                "-o",
                str(out),
                str(src),
                *flags,
            ]
        )
        return out

    obj = tmp / f"{name}.o"
    compile_flags = [f for f in flags if not f.startswith("-Wl,")]
    _run([*base, "-c", "-o", str(obj), str(src), *compile_flags])
    _run([linker, "-shared", "-soname", soname, "-o", str(out), str(obj), *_linker_args(flags)])
    return out


_PROBE_SOURCE = """
extern int probe_external;
int probe_value = 1;
int *probe_pointer = &probe_value;
int probe(void) { return probe_external + *probe_pointer; }
"""


@functools.cache
def have_cross(target: str) -> bool:
    """Whether this machine really compiles and links a shared library for `target`.

    Checked by building one (having clang on PATH proves nothing about lld or a backend).
    """
    if shutil.which("clang") is None:
        return False
    linker = SEPARATE_LINKER.get(target)
    if linker is None and shutil.which("ld.lld") is None:
        return False
    if linker is not None and shutil.which(linker) is None:
        return False
    with tempfile.TemporaryDirectory(prefix="relrocheck-probe-") as tmp:
        try:
            out = build_library(tmp, "probe", _PROBE_SOURCE, target=target)
        except BuildError:
            return False
        return out.is_file() and out.stat().st_size > 0


# GNU strip only knows the host architecture (Debian's binutils); llvm-strip knows all.
_STRIP_TOOLS: tuple[str, ...] = ("strip", "llvm-strip", "llvm-strip-14")


def sstrip_copy(path: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """A copy of `path` at `dst` without section headers (`llvm-objcopy --strip-sections`,
    as sstrip leaves a file); the calling test is skipped without llvm-objcopy."""
    import pytest

    objcopy = shutil.which("llvm-objcopy")
    if objcopy is None:
        pytest.skip("llvm-objcopy (Debian llvm) is not installed")
    subprocess.run([objcopy, "--strip-sections", str(path), str(dst)], check=True)
    return Path(dst)


def strip_copy(path: str | os.PathLike[str]) -> Path:
    """A copy of `path` with all non-dynamic symbols removed (`.symtab` gone, `.dynsym`
    kept), next to it as `<stem>.stripped<suffix>`; the original is untouched."""
    src = Path(path)
    dst = src.with_name(f"{src.stem}.stripped{src.suffix}")
    errors: list[str] = []
    for tool in _STRIP_TOOLS:
        if shutil.which(tool) is None:
            continue
        proc = subprocess.run(
            [tool, "--strip-all", "-o", str(dst), str(src)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            return dst
        errors.append(f"{tool}: {proc.stderr.strip()}")
    raise BuildError(f"cannot strip {src}: " + "; ".join(errors or ["no strip tool found"]))
