"""Side-by-side speed and memory benchmark: relrocheck against GNU readelf.

Run it from the repository root (standard library only, Python 3.11+, needs `readelf`,
`xargs`, `cc` and `ldconfig` on PATH). It measures this checkout as users run it: installed
with pip (not editable) into a virtual environment under `--work`, made once per version of
the package's files (pip fetches PyYAML and jsonschema); where that fails it says so and runs
the checkout in place with this interpreter, whose site start-up may cost more.

    python3 benchmarks/bench.py                      # everything, 7 interleaved runs each
    python3 benchmarks/bench.py --check              # exit 1 if a required bound is exceeded
    python3 benchmarks/bench.py --repeat 3 --skip scan --skip synth
    python3 benchmarks/bench.py --relrocheck .venv/bin/relrocheck --lib /path/to/libfoo.so
    python3 benchmarks/bench.py --relrocheck "python3 -c pass"   # dry run without relrocheck
    python3 benchmarks/bench.py --json results.json  # machine-readable copy of the results

What it measures, each command's stdout going to /dev/null:

- report: `relrocheck report LIB --format json` against `readelf -rW LIB` and
  `readelf -sW LIB`, on a real library (default: Debian's libLLVM-15.so.1 when present,
  `--lib` to choose others) and on a synthetic library of more than 500,000 dynamic
  relocations that `synth.py` generates and compiles into the `--work` cache folder.
  Required: time(report) / (time(readelf -rW) + time(readelf -sW)) <= 0.5 on the real
  library and <= 1.0 on the synthetic one, and maxrss(report) / maxrss(readelf -rW) <= 2.0.
- small: `relrocheck report` end to end on a small library (default libz.so.1), next to
  the interpreter's own start-up time. Required: median wall time < 0.25 s.
- scan: `relrocheck scan DIR --jobs J --format json` against readelf -rW over the same
  files run by `xargs -0 -P J -n BATCH` (default DIR: the folder holding libc.so.6 per
  `ldconfig -p`). Required: time(scan) / time(readelf) <= 2.0. Skipped with a message while
  relrocheck has no `scan` subcommand.

Method: the commands of a comparison run interleaved (A, B, C, A, B, C, ...) after one
unmeasured warm-up round that fills the page cache; each figure is the median of
`--repeat` runs. Each command is spawned by a fresh, minimal launcher interpreter that
times it from spawn to reap and takes its peak memory as the command's own `ru_maxrss`
from `os.wait4` (the largest resident set of the command and of the descendants it waited
for), never the benchmark's. Linux lets a child inherit its spawner's peak resident size,
so peaks below the launcher's size (about 8 MiB) print as `<=` that floor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth  # sibling module: benchmarks/ is a folder of scripts, not a package

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIB = Path("/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1")
SYNTH_RELOCATIONS = 550_000
SYNTH_MINIMUM = 500_000

# time(report) / time(readelf -rW + readelf -sW): on a real library, and on the synthetic one
# (the worst case: half a million relocations and more symbols than libLLVM per relocation).
REAL_TIME_BOUND, SYNTH_TIME_BOUND, REPORT_TIME_TARGET = 0.5, 1.0, 0.5
REPORT_RSS_BOUND = 2.0
SMALL_WALL_BOUND = 0.25
SCAN_TIME_BOUND = 2.0

ELF_MAGIC = b"\x7fELF"
ET_DYN = 3
# readelf and argparse both exit 2 on a usage error; argparse says "invalid choice" for an
# unknown subcommand.
USAGE_ERROR = 2


@dataclass(frozen=True)
class Sample:
    """One run of one command."""

    wall: float
    maxrss_kib: int
    floor_kib: int
    returncode: int
    stderr: str


@dataclass
class Row:
    """All runs of one command in a comparison."""

    label: str
    command: list[str]
    stdin: Path | None = None
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def maxrss_kib(self) -> float:
        return statistics.median(s.maxrss_kib for s in self.samples)

    @property
    def at_floor(self) -> bool:
        """Whether the peak may be the inherited floor rather than the command's own."""
        floor = max(s.floor_kib for s in self.samples)
        return self.maxrss_kib <= floor * 1.02

    @property
    def failed(self) -> Sample | None:
        """The first run that exited non-zero, if any."""
        return next((s for s in self.samples if s.returncode != 0), None)


@dataclass(frozen=True)
class Verdict:
    """One bound checked against a measured ratio or time."""

    name: str
    value: float | None
    bound: float
    target: float | None
    inclusive: bool
    note: str = ""
    run_failed: bool = False

    @property
    def passed(self) -> bool | None:
        """None when nothing was measured; a crashed relrocheck run counts as a failure."""
        if self.run_failed:
            return False
        if self.value is None:
            return None
        return self.value <= self.bound if self.inclusive else self.value < self.bound


# Spawns, times and reaps one command in a fresh, small interpreter. Linux gives a child the
# peak resident size of the memory it was spawned from (exec records the old mm's high-water
# mark in the child's ru_maxrss), so spawning from the benchmark itself would report every
# child as at least as big as the benchmark. `python -I -S` with nothing imported keeps that
# floor near 8 MiB, below every peak the bounds use; it is measured and printed too.
LAUNCHER = """
import os, sys, time
def hwm():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0
null = os.open(os.devnull, os.O_WRONLY)
floor = hwm()
started = time.perf_counter()
try:
    pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ,
                          file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
except OSError as error:
    print(error, file=sys.stderr)
    print(0.0, 0, floor, 127)
else:
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    print(wall, usage.ru_maxrss, floor, os.waitstatus_to_exitcode(status))
"""


def run_once(command: Sequence[str], env: dict[str, str], stdin: Path | None = None) -> Sample:
    """Run `command` with stdout to /dev/null; return its wall time and its own max RSS.

    The timing starts at spawn and ends at reap, inside the launcher, so the launcher's own
    start-up is not counted. ru_maxrss comes from wait4 on the command itself (in KiB on
    Linux): the largest resident set of the command and of the descendants it waited for.
    """
    with open(stdin or os.devnull, "rb") as source, tempfile.TemporaryFile() as err:
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, *command],
            stdin=source,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            check=True,
            text=True,
        )
        err.seek(0)
        stderr = err.read(8192).decode(errors="replace")
    wall, maxrss, floor, returncode = result.stdout.split()
    return Sample(float(wall), int(maxrss), int(floor), int(returncode), stderr)


def compare(title: str, rows: list[Row], args: argparse.Namespace, env: dict[str, str]) -> None:
    """Run the rows' commands round-robin, keep all but the warm-up rounds, print a table."""
    repeat, warmup = args.repeat, args.warmup
    print(f"\n{title}, medians of {repeat}", flush=True)
    for round_ in range(warmup + repeat):
        for row in rows:
            sample = run_once(row.command, env, row.stdin)
            if round_ >= warmup:
                row.samples.append(sample)
        print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    print_rows(rows)


def print_rows(rows: list[Row]) -> None:
    width = max(len(r.label) for r in rows)
    print(
        f"  {'command':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}  "
        f"{'maxrss MiB':>10}  rc"
    )
    for row in rows:
        walls = [s.wall for s in row.samples]
        codes = sorted({s.returncode for s in row.samples})
        rss = f"{'<=' if row.at_floor else ''}{row.maxrss_kib / 1024:.1f}"
        print(
            f"  {row.label:<{width}}  {row.wall:9.3f}  {min(walls):7.3f}  {max(walls):7.3f}  "
            f"{rss:>10}  {','.join(map(str, codes))}"
        )
    if any(row.at_floor for row in rows):
        print("  (<=: the peak is at most this: the floor a child inherits from its launcher)")
    for row in rows:
        if (bad := row.failed) is not None:
            tail = bad.stderr.strip().splitlines()[-3:]
            print(f"  ! {row.label} exited {bad.returncode}: {' / '.join(tail)}")


def subcommand_available(relrocheck: list[str], name: str, env: dict[str, str]) -> bool:
    """Whether `relrocheck NAME --help` works (argparse exits 2 on an unknown subcommand)."""
    probe = run_once([*relrocheck, name, "--help"], env)
    if probe.returncode == 0:
        return True
    if probe.returncode != USAGE_ERROR and "invalid choice" not in probe.stderr:
        tail = probe.stderr.strip().splitlines()[-1:] or ["no message"]
        print(f"  ! `{name} --help` exited {probe.returncode}: {tail[0]}")
    return False


def relocation_summary(library: Path) -> str:
    size = library.stat().st_size / 1e6
    return f"{size:.1f} MB, {synth.count_relocations(library):,} dynamic relocations"


def bench_report(
    library: Path,
    relrocheck: list[str],
    args: argparse.Namespace,
    env: dict[str, str],
    report_ok: bool,
    results: dict[str, object],
    time_bound: float = REAL_TIME_BOUND,
) -> list[Verdict]:
    """report vs readelf -rW and -sW on one library."""
    name = library.name
    rows = [
        Row("readelf -rW", ["readelf", "-rW", str(library)]),
        Row("readelf -sW", ["readelf", "-sW", str(library)]),
    ]
    if report_ok:
        rows.insert(
            0,
            Row(
                "relrocheck report --format json",
                [*relrocheck, "report", str(library), "--format", "json"],
            ),
        )
    compare(f"{name} ({relocation_summary(library)})", rows, args, env)
    results[f"report:{library}"] = [asdict(r) for r in rows]

    time_ratio = rss_ratio = None
    note, rss_note, run_failed = ("" if report_ok else "report unavailable"), "", False
    if report_ok:
        report, rel, sym = rows
        if (bad := report.failed) is not None:
            note, run_failed = f"report exited {bad.returncode}", True
        else:
            time_ratio = report.wall / (rel.wall + sym.wall)
            rss_ratio = report.maxrss_kib / rel.maxrss_kib
            if rel.at_floor:
                rss_note = "readelf -rW at the maxrss floor: ratio understated"
    return [
        Verdict(
            f"{name}: time report / (readelf -rW + -sW)",
            time_ratio,
            time_bound,
            REPORT_TIME_TARGET,
            inclusive=True,
            note=note,
            run_failed=run_failed,
        ),
        Verdict(
            f"{name}: maxrss report / readelf -rW",
            rss_ratio,
            REPORT_RSS_BOUND,
            None,
            inclusive=True,
            note=note or rss_note,
            run_failed=run_failed,
        ),
    ]


def bench_small(
    library: Path,
    relrocheck: list[str],
    args: argparse.Namespace,
    env: dict[str, str],
    report_ok: bool,
    results: dict[str, object],
) -> list[Verdict]:
    """End-to-end time on a small library, next to bare interpreter start-up and readelf."""
    rows = [
        Row("python -c pass (start-up floor)", [args.interpreter, "-c", "pass"]),
        Row("readelf -rW", ["readelf", "-rW", str(library)]),
    ]
    if report_ok:
        rows.insert(
            0,
            Row(
                "relrocheck report --format json",
                [*relrocheck, "report", str(library), "--format", "json"],
            ),
        )
    compare(f"small: {library} ({relocation_summary(library)})", rows, args, env)
    results[f"small:{library}"] = [asdict(r) for r in rows]
    value, note, run_failed = None, "report unavailable", False
    if report_ok:
        if (bad := rows[0].failed) is not None:
            note, run_failed = f"report exited {bad.returncode}", True
        else:
            value, note = rows[0].wall, ""
    return [
        Verdict(
            f"{library.name}: report wall time, s",
            value,
            SMALL_WALL_BOUND,
            None,
            inclusive=False,
            note=note,
            run_failed=run_failed,
        )
    ]


def elf_shared_objects(root: Path) -> list[Path]:
    """Regular files under `root` that are ELF ET_DYN, each inode once, in walk order.

    This is the fair input for readelf: what a content-sniffing scan would pick, without the
    symlinks (`libfoo.so -> libfoo.so.1.2`) and hard links that would count a file twice.
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            path = Path(folder, name)
            try:
                info = path.lstat()
                if not path.is_file() or path.is_symlink() or (info.st_dev, info.st_ino) in seen:
                    continue
                with open(path, "rb") as handle:
                    header = handle.read(18)
            except OSError:
                continue
            if len(header) < 18 or header[:4] != ELF_MAGIC:
                continue
            # e_type is at offset 16 in both ELF classes, in the byte order of EI_DATA.
            (e_type,) = struct.unpack("<H" if header[5] == 1 else ">H", header[16:18])
            if e_type == ET_DYN:
                seen.add((info.st_dev, info.st_ino))
                found.append(path)
    return found


def ldconfig_path(soname: str) -> Path | None:
    """Where `ldconfig -p` says `soname` is, preferring this interpreter's multiarch folder."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    try:
        listing = subprocess.run(
            ["ldconfig", "-p"], check=False, capture_output=True, text=True
        ).stdout
    except OSError:
        return None
    candidates = [
        Path(line.rsplit("=>", 1)[1].strip())
        for line in listing.splitlines()
        if line.strip().startswith(f"{soname} ") and "=>" in line
    ]
    # ldconfig also lists other ABIs' copies (lib32, libx32): take the native one.
    candidates.sort(key=lambda p: multiarch not in str(p))
    return candidates[0] if candidates else None


def default_scan_dir() -> Path:
    """The folder that `ldconfig -p` gives for this machine's libc.so.6."""
    libc = ldconfig_path("libc.so.6")
    return libc.parent.resolve() if libc else Path("/usr/lib")


def bench_scan(
    root: Path,
    relrocheck: list[str],
    args: argparse.Namespace,
    env: dict[str, str],
    results: dict[str, object],
) -> list[Verdict]:
    """scan over a folder against readelf -rW over the same ELF shared objects."""
    name = f"scan {root}"
    if not subcommand_available(relrocheck, "scan", env):
        print(f"\n{name}: skipped, relrocheck has no `scan` subcommand yet")
        return [
            Verdict(
                f"{name}: time scan / readelf",
                None,
                SCAN_TIME_BOUND,
                None,
                inclusive=True,
                note="scan unavailable",
            )
        ]
    files = elf_shared_objects(root)
    if not files:
        print(f"\n{name}: skipped, no ELF shared objects found")
        return []
    jobs = args.jobs
    # Several files per readelf process, but enough batches that all J workers stay busy.
    batch = max(1, len(files) // (jobs * 8))
    listing = args.work / "scan-files.lst"
    listing.write_bytes(b"\0".join(bytes(f) for f in files))
    rows = [
        Row(
            f"relrocheck scan --jobs {jobs} --format json",
            [*relrocheck, "scan", str(root), "--jobs", str(jobs), "--format", "json"],
        ),
        Row(
            f"xargs -0 -P {jobs} -n {batch} readelf -rW",
            ["xargs", "-0", "-P", str(jobs), "-n", str(batch), "readelf", "-rW"],
            stdin=listing,
        ),
    ]
    size = sum(f.stat().st_size for f in files) / 1e6
    compare(f"{name} ({len(files)} ELF shared objects, {size:.0f} MB)", rows, args, env)
    results[name] = [asdict(r) for r in rows]
    scan, readelf = rows
    if (bad := scan.failed) is not None:
        return [
            Verdict(
                f"{name}: time scan / readelf",
                None,
                SCAN_TIME_BOUND,
                None,
                inclusive=True,
                note=f"scan exited {bad.returncode}",
                run_failed=True,
            )
        ]
    return [
        Verdict(
            f"{name}: time scan / readelf",
            scan.wall / readelf.wall,
            SCAN_TIME_BOUND,
            None,
            inclusive=True,
        )
    ]


def print_verdicts(verdicts: Iterable[Verdict]) -> bool:
    """Print the bounds table; return whether every measured bound held."""
    verdicts = list(verdicts)
    print("\nbounds")
    width = max((len(v.name) for v in verdicts), default=10)
    ok = True
    for v in verdicts:
        sign = "<=" if v.inclusive else "<"
        target = f", target {v.target:g}" if v.target not in (None, v.bound) else ""
        value = "-" if v.value is None else f"{v.value:.3f}"
        status = {None: "n/a", True: "ok", False: "FAIL"}[v.passed]
        if v.note:
            status += f" ({v.note})"
        # Unmeasured (a subcommand not there yet) is not a failure; a crashed run is.
        ok = ok and v.passed is not False
        print(f"  {v.name:<{width}}  {value:>7}  required {sign} {v.bound:g}{target}: {status}")
    return ok


def installed_checkout(work: Path) -> tuple[list[str], str]:
    """This checkout installed with pip into a virtual environment under `work`, cached by
    a hash of the package's files; ([], why) when that cannot be done (no venv or pip, no
    package index for the dependencies): the caller then runs the checkout in place."""
    digest = hashlib.sha256()
    for path in sorted([REPO_ROOT / "pyproject.toml", REPO_ROOT / "setup.py",
                        *(REPO_ROOT / "relrocheck").rglob("*"),
                        *(REPO_ROOT / "kernels").glob("*")]):
        # A compiled module in the checkout (an editable install's) is not what pip builds.
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so":
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    venv = work / f"venv-{digest.hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if not (venv / "installed").is_file():
        for old in work.glob("venv-*"):
            shutil.rmtree(old, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                           capture_output=True)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", str(REPO_ROOT)],
                           check=True, capture_output=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(venv, ignore_errors=True)
            detail = getattr(exc, "stderr", b"") or b""
            last = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
            return [], f"install into a virtual environment failed ({last[0]}): " \
                       f"running the checkout in place"
        (venv / "installed").write_text("ok\n")
    return [str(venv / "bin" / "relrocheck")], f"installed copy of this checkout: {venv}"


def compiled_kernels(interpreter: str, env: dict[str, str]) -> str:
    """Whether the relrocheck measured runs its compiled kernels (relrocheck/native.py) or
    their pure-Python twins: the figures differ by about half on large libraries."""
    probe = subprocess.run([interpreter, "-c", "from relrocheck.native import kernels; "
                            "print('in use' if kernels else 'not built: pure Python')"],
                           env=env, capture_output=True, text=True)
    return probe.stdout.strip() or "unknown (relrocheck.native cannot be imported)"


def small_library(work: Path, cc: str | None) -> Path:
    """libz.so.1 per `ldconfig -p`, or a tiny synthetic library when there is none."""
    libz = ldconfig_path("libz.so.1")
    if libz is not None and libz.is_file():
        return libz
    return synth.build_library(work, relocations=100, units=1, cc=cc, name="small").path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark relrocheck against readelf (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--relrocheck",
        metavar="CMD",
        help="command that runs relrocheck, split like a shell would "
        "(default: this interpreter with -m relrocheck on this checkout)",
    )
    parser.add_argument(
        "--lib",
        type=Path,
        action="append",
        metavar="LIB",
        help=f"real library for the report comparison, repeatable "
        f"(default: {DEFAULT_LIB} when present)",
    )
    parser.add_argument(
        "--small",
        type=Path,
        metavar="LIB",
        help="small library timed end to end (default: libz.so.1)",
    )
    parser.add_argument(
        "--scan",
        type=Path,
        metavar="DIR",
        help="folder for the scan comparison (default: libc.so.6's folder)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel jobs for scan and for xargs -P",
    )
    parser.add_argument("--repeat", type=int, default=7, help="measured runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / f"relrocheck-bench-{os.getuid()}",
        help="cache folder for the synthetic libraries",
    )
    parser.add_argument(
        "--synth-relocations",
        type=int,
        default=SYNTH_RELOCATIONS,
        help="dynamic relocations in the synthetic library",
    )
    parser.add_argument(
        "--synth-per-function",
        type=int,
        default=synth.RELOCATIONS_PER_FUNCTION,
        metavar="N",
        help="one exported function and object per N synthetic relocations (lower: more "
        "symbols; the default follows libLLVM's proportions)",
    )
    parser.add_argument("--cc", help="C compiler command (default: $CC or cc)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("real", "synth", "small", "scan"),
        help="leave a part out",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a required bound is exceeded or relrocheck fails",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # An installed relrocheck runs from cached bytecode. Where the environment forbids writing
    # it (PYTHONDONTWRITEBYTECODE), every run would pay for compiling the package again; the
    # warm-up round writes the cache under --work instead, leaving the checkout clean.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str((args.work / "pycache").resolve())
    if args.relrocheck:
        relrocheck = shlex.split(args.relrocheck)
    else:
        # Measure this checkout as users run it: installed (not editable) into a fresh
        # virtual environment, whose start-up is the interpreter's alone.
        relrocheck, how = installed_checkout(args.work)
        print(how)
        if not relrocheck:
            relrocheck = [sys.executable, "-m", "relrocheck"]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                              env.get("PYTHONPATH")]))
    print(f"relrocheck: {shlex.join(relrocheck)}")
    # The start-up floor is that of the interpreter relrocheck runs on.
    beside = Path(relrocheck[0]).parent / "python"
    args.interpreter = str(beside) if beside.is_file() else sys.executable
    version = subprocess.run(["readelf", "--version"], check=True, capture_output=True, text=True)
    print(f"readelf: {version.stdout.splitlines()[0]}")
    print(f"compiled kernels: {compiled_kernels(args.interpreter, env)}")
    print(f"cpus: {os.cpu_count()}, repeat: {args.repeat}, warm-up rounds: {args.warmup}")

    report_ok = subcommand_available(relrocheck, "report", env)
    if not report_ok:
        print("relrocheck has no working `report` subcommand: timing readelf alone")
    results: dict[str, object] = {"relrocheck": relrocheck}
    verdicts: list[Verdict] = []

    if "real" not in args.skip:
        libraries = args.lib or ([DEFAULT_LIB] if DEFAULT_LIB.is_file() else [])
        if not libraries:
            print(f"\nreal library: skipped, {DEFAULT_LIB} not found (use --lib)")
        for library in libraries:
            verdicts += bench_report(library.resolve(), relrocheck, args, env, report_ok, results)

    if "synth" not in args.skip:
        print(f"\nsynthetic library: building in {args.work} ...", flush=True)
        built = synth.build_library(
            args.work, args.synth_relocations, cc=args.cc, per_function=args.synth_per_function
        )
        how = "cached" if built.cached else f"compiled in {built.compile_seconds:.1f} s"
        print(f"  {built.path}: {built.relocations:,} dynamic relocations ({how})")
        if built.relocations < SYNTH_MINIMUM:
            print(f"  ! fewer than {SYNTH_MINIMUM:,} relocations: raise --synth-relocations")
        verdicts += bench_report(built.path, relrocheck, args, env, report_ok, results,
                                 time_bound=SYNTH_TIME_BOUND)

    if "small" not in args.skip:
        small = args.small or small_library(args.work, args.cc)
        verdicts += bench_small(small.resolve(), relrocheck, args, env, report_ok, results)

    if "scan" not in args.skip:
        root = (args.scan or default_scan_dir()).resolve()
        verdicts += bench_scan(root, relrocheck, args, env, results)

    ok = print_verdicts(verdicts)
    if args.json:
        results["verdicts"] = [{**asdict(v), "passed": v.passed} for v in verdicts]
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.check and not ok:
        print("\ncheck failed: a required bound was exceeded or relrocheck failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
