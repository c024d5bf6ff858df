"""Structure-aware fuzzing: a few thousand mutants of libraries built here, through the CLI.

Each mutant changes fields a reader acts on (tests/elfmutate.py): ELF header, section and
program headers, dynamic entries, RELR words, symbol values and sizes, .debug_* bytes. Every
case runs `relrocheck report` in a process of its own, forked from a worker that has
relrocheck imported (a few milliseconds a case), under a memory limit, a CPU limit and a
wall-clock alarm. A case passes when it exits 0, 1 or 2, prints no traceback, says an error
in exactly one `relrocheck: error: FILE: ...` line, and stays within its time.

The cases are fixed by a seed, so a failure names a case that fails again the same way:
`RELROCHECK_FUZZ_CASES=N` runs more (or fewer), `RELROCHECK_FUZZ_SEED` another set.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from elfmutate import Mutator
from libbuild import BuildError, build_library, fixture, have_cross

CASES = int(os.environ.get("RELROCHECK_FUZZ_CASES", "2000"))
SEED = int(os.environ.get("RELROCHECK_FUZZ_SEED", "20261201"))
CASE_CPU_SECONDS = 10  # per case: a runaway loop is killed by SIGXCPU
CASE_WALL_SECONDS = 30  # per case: a blocked read is killed by SIGALRM
CASE_MEMORY = 1 << 30
SLOW_CASE_SECONDS = 5.0  # the slowest case may take this long (a normal one: ~20 ms)

# Runs the cases it reads from stdin (JSON), one forked child each; prints one JSON result
# per case: [index, how it ended, exit code, seconds, stderr tail].
WORKER = textwrap.dedent("""
    import json, os, resource, signal, sys, tempfile, time, traceback
    from relrocheck.cli import main
    spec = json.load(sys.stdin)
    err = tempfile.TemporaryFile()
    devnull = os.open(os.devnull, os.O_WRONLY)
    # Import what a run imports lazily once, here, rather than in every forked case.
    saved = os.dup(1)
    os.dup2(devnull, 1)
    for warm in spec["warmup"]:
        main(warm)
    sys.stdout.flush()
    os.dup2(saved, 1)
    for index, argv in spec["cases"]:
        err.seek(0)
        err.truncate()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(devnull, 1)
                os.dup2(err.fileno(), 2)
                resource.setrlimit(resource.RLIMIT_AS, (spec["memory"], spec["memory"]))
                resource.setrlimit(resource.RLIMIT_CPU, (spec["cpu"], spec["cpu"] + 1))
                signal.alarm(spec["wall"])
                try:
                    code = main(argv)
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 2
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                code = 99
            os._exit(code)
        _, status, _usage = os.wait4(pid, 0)
        seconds = time.monotonic() - start
        err.seek(0)
        text = err.read()[-4000:].decode("utf-8", "replace")
        if os.WIFSIGNALED(status):
            ended, code = "signal " + signal.Signals(os.WTERMSIG(status)).name, None
        else:
            ended, code = "exit", os.WEXITSTATUS(status)
        print(json.dumps([index, ended, code, seconds, text]), flush=True)
""")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Libraries with DWARF, for the host and (where the toolchain is here) ELF32 REL and a
    big-endian target; one with RELR when a linker writes it."""
    tmp = tmp_path_factory.mktemp("fuzz_sources")
    libs = {
        "c": build_library(tmp / "c", "pointer_tables", fixture("pointer_tables.c"),
                           flags=["-O1", "-g"]),
        "c++": build_library(tmp / "cxx", "cxx_vtables", fixture("cxx_vtables.cpp"),
                             lang="c++", flags=["-O1", "-g"]),
    }
    for flags in (["-Wl,-z,pack-relative-relocs"], ["-fuse-ld=lld", "-Wl,--pack-dyn-relocs=relr"]):
        try:
            libs["relr"] = build_library(tmp / "relr", "pointer_tables",
                                         fixture("pointer_tables.c"), flags=["-g", *flags])
            break
        except BuildError:
            continue
    for target in ("i686-linux-gnu", "powerpc64-linux-gnu"):
        if have_cross(target):
            libs[target] = build_library(tmp / target, "cross", fixture("cross.c"),
                                         target=target, flags=["-O1", "-g"])
    return {name: path.read_bytes() for name, path in libs.items()}


def _cases(sources: dict[str, bytes], tmp: Path) -> tuple[list[tuple[int, list[str]]],
                                                          dict[int, str]]:
    rng = random.Random(SEED)
    mutators = {name: Mutator(data) for name, data in sources.items()}
    names = sorted(mutators)
    cases, described = [], {}
    for index in range(CASES):
        name = names[index % len(names)]
        data, done = mutators[name].mutate(rng)
        path = tmp / f"case{index:05}.so"
        path.write_bytes(data)
        argv = ["report", "--format", "json" if index % 4 else "text", str(path)]
        cases.append((index, argv))
        described[index] = f"case {index} ({name}): {'; '.join(done)}"
    return cases, described


def _run(cases: list[tuple[int, list[str]]], jobs: int, warmup: list[list[str]]) -> list[list]:
    """The cases split over `jobs` worker processes, each run under the per-case limits."""
    spec = {"memory": CASE_MEMORY, "cpu": CASE_CPU_SECONDS, "wall": CASE_WALL_SECONDS,
            "warmup": warmup}
    workers = []
    for j in range(jobs):
        stdin = tempfile.TemporaryFile("w+")
        json.dump(dict(spec, cases=cases[j::jobs]), stdin)
        stdin.seek(0)
        workers.append(subprocess.Popen([sys.executable, "-c", WORKER], stdin=stdin,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True))
        stdin.close()
    results = []
    for proc in workers:
        out, err = proc.communicate(timeout=1800)
        assert proc.returncode == 0, err[-3000:]
        results.extend(json.loads(line) for line in out.splitlines())
    return results


def _problem(ended: str, code: int | None, seconds: float, stderr: str, path: str) -> str | None:
    """What is wrong with how one case ended, or None."""
    if ended != "exit":
        return f"killed by {ended} after {seconds:.1f} s (crash, runaway or hang)"
    if "Traceback" in stderr:
        return "traceback: " + stderr.strip().splitlines()[-1]
    if code not in (0, 1, 2):
        return f"exit code {code}"
    if seconds > SLOW_CASE_SECONDS:
        return f"took {seconds:.1f} s"
    lines = stderr.splitlines()
    if code == 2 and (len(lines) != 1 or not lines[0].startswith(f"relrocheck: error: {path}")):
        return f"exit 2 without one error line naming the file: {stderr.strip()[:300]!r}"
    return None


def test_structure_aware_fuzzing_through_the_cli(tmp_path: Path,
                                                 sources: dict[str, bytes]) -> None:
    cases, described = _cases(sources, tmp_path)
    originals = []
    for name, data in sources.items():
        original = tmp_path / f"original-{name}.so"
        original.write_bytes(data)
        originals += [["report", "--format", f, str(original)] for f in ("json", "text")]
    start = time.monotonic()
    results = _run(cases, jobs=2, warmup=originals)
    elapsed = time.monotonic() - start
    assert sorted(r[0] for r in results) == [index for index, _ in cases]
    argv = dict(cases)
    problems = []
    for index, ended, code, seconds, stderr in results:
        problem = _problem(ended, code, seconds, stderr, argv[index][-1])
        if problem:
            problems.append(f"{described[index]}\n    -> {problem}")
    assert not problems, f"{len(problems)} of {len(cases)} cases failed:\n" + "\n".join(
        problems[:40])
    codes = [r[2] for r in results]
    # The mutations reach the reader: many files are refused, many still measured.
    assert codes.count(2) > len(cases) // 10, "almost no mutant was refused"
    assert codes.count(0) + codes.count(1) > len(cases) // 10, "almost every mutant was refused"
    print(f"{len(cases)} cases in {elapsed:.1f} s: {codes.count(0)} ok, "
          f"{codes.count(2)} refused, slowest {max(r[3] for r in results):.2f} s")


def test_the_mutator_changes_what_it_says(sources: dict[str, bytes]) -> None:
    """A mutation changes the file at the field it names (checked with readelf-free struct
    reads of the layout the mutator was given), and is reproducible from the seed."""
    data = sources["c"]
    first = Mutator(data).mutate(random.Random(5), count=3)
    again = Mutator(data).mutate(random.Random(5), count=3)
    assert first == again
    changed = 0
    for seed in range(200):
        mutant, done = Mutator(data).mutate(random.Random(seed), count=1)
        assert len(done) == 1
        changed += mutant != data
    assert changed > 150  # a few set a field to the value it had
