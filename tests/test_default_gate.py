"""The default gate fails on what costs memory, not on toolchain noise (issue 11).

One real-looking C library (several translation units, an exported API, a GOT with libc
imports and own exports) is built with the system compiler in several ways. With NO policy
file: a rebuild, a new libc import, -Wl,-z,now, clang instead of gcc and -O0 instead of -O2
pass; a new 50-entry string-pointer table (which adds no page) and a grown existing table
fail and name the symbol. The strict policy fails all of them. What changed is checked
against readelf and nm, never against relrocheck's own numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import oracle
import pytest
from gatelibs import run_cli

API = """
const char *lib_version(void);
const char *lib_color(int i);
int lib_parse(const char *s);
double lib_scale(int unit, double v);
const char *lib_env(void);
const char *lib_level(int i);
unsigned lib_crc(unsigned c, int i);
"""
SOURCES = {
    "version.c": """#include "api.h"
#include <stdio.h>
const char *lib_version(void) {
    static char version[16];
    snprintf(version, sizeof version, "%d.%d", 1, 7);
    return version;
}
""",
    "colors.c": """#include "api.h"
#include <string.h>
const char *colors[] = {"red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"};
struct unit { const char *name; double factor; };
static const struct unit units[] = {{"mm", 0.001}, {"cm", 0.01}, {"m", 1.0}, {"km", 1000.0}};
int counters[256] = {1, 2, 3};
/* Never written: GCC -O2 moves it to .rodata, -O0 keeps it in .data. */
static int crc_table[256] = {0x00, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419};
const char *lib_color(int i) { counters[i & 255]++; return colors[i & 7]; }
double lib_scale(int unit, double v) {
    return units[unit & 3].factor * v + strlen(units[unit & 3].name);
}
unsigned lib_crc(unsigned c, int i) { return crc_table[(c ^ i) & 255] ^ (c >> 8); }
""",
    "parse.c": """#include "api.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
static int (*const checks[])(int) = {isdigit, isalpha, isspace};
int lib_parse(const char *s) {
    int n = 0;
    for (; *s; s++) n += checks[n & 1](*s) ? 1 : 0;
    return n + (int)strtol(s, NULL, 10) + (int)strlen(lib_color(n));
}
""",
    "env.c": """#include "api.h"
const char *lib_env(void) { return "none"; }
""",
    "levels.c": """#include "api.h"
const char *lib_level(int i) { return i ? "b" : "a"; }
""",
}
GETENV = """#include "api.h"
#include <stdlib.h>
const char *lib_env(void) { const char *v = getenv("LIB_ENV"); return v ? v : "none"; }
"""
LEVELS = [f"level{i}" for i in range(50)]
LEVELS_TABLE = ('#include "api.h"\nstatic const char *levels[] = {'
                + ", ".join(f'"{n}"' for n in LEVELS)
                + "};\nconst char *lib_level(int i) { return levels[i % 50]; }\n")
GROWN_COLORS = SOURCES["colors.c"].replace(
    '"white"}', '"white", "orange", "purple", "brown", "grey", "pink", "gold", "navy", "teal"}'
).replace("colors[i & 7]", "colors[i & 15]")

PASSING = ("rebuild", "getenv", "now", "clang", "O0")
FAILING = {"table": "levels", "grown": "colors"}


def _build(folder: Path, compiler: str, flags: list[str], changes: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "api.h").write_text(API)
    files = []
    for name, text in {**SOURCES, **changes}.items():
        (folder / name).write_text(text)
        files.append(name)
    out = folder / "libdemo.so"
    subprocess.run([compiler, "-fPIC", "-shared", *flags, "-o", str(out), *files], cwd=folder,
                   check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo")
    variants = {
        "v1": ("cc", ["-O2"], {}),
        "rebuild": ("cc", ["-O2"], {}),
        "getenv": ("cc", ["-O2"], {"env.c": GETENV}),
        "now": ("cc", ["-O2", "-Wl,-z,now"], {}),
        "O0": ("cc", ["-O0"], {}),
        "table": ("cc", ["-O2"], {"levels.c": LEVELS_TABLE}),
        "grown": ("cc", ["-O2"], {"colors.c": GROWN_COLORS}),
    }
    if shutil.which("clang"):
        variants["clang"] = ("clang", ["-O2"], {})
    return {name: _build(root / name, cc, flags, changes)
            for name, (cc, flags, changes) in variants.items()}


@pytest.fixture(scope="module")
def baseline_dir(builds: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("baseline")
    proc = run_cli("--baseline", "update", str(builds["v1"]), cwd=folder)  # no policy file
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder


def _need(builds: dict[str, Path], name: str) -> Path:
    if name not in builds:
        pytest.skip(f"{name}: needs clang")
    return builds[name]


def test_the_changes_are_what_they_claim(builds: dict[str, Path]) -> None:
    """readelf and nm: each variant changes what the test says, and nothing user-owned."""
    v1 = builds["v1"]
    plt = {n: oracle.relocation_type_counts(p).get("R_X86_64_JUMP_SLOT", 0)
           for n, p in builds.items()}
    if oracle.elf_header(v1)["Machine"] != "Advanced Micro Devices X86-64":
        pytest.skip("the oracle counts below are x86-64 relocation names")
    assert plt["getenv"] == plt["v1"] + 1  # one more import slot
    assert "BIND_NOW" in oracle.dynamic_flags(builds["now"])
    assert "BIND_NOW" not in oracle.dynamic_flags(v1)
    data = {n: {name: s["size"] for name, s in oracle.sections(p).items()}
            for n, p in builds.items()}
    assert data["O0"][".data"] >= data["v1"][".data"] + 1000  # crc_table stays writable
    names = {s["name"] for s in oracle.symbols(builds["table"])}
    assert "levels" in names
    assert oracle.pages_with_relocations(builds["table"]) == oracle.pages_with_relocations(v1)


@pytest.mark.parametrize("variant", PASSING)
def test_default_policy_passes_toolchain_changes(builds: dict[str, Path], baseline_dir: Path,
                                                 variant: str) -> None:
    lib = _need(builds, variant)
    proc = run_cli("check", str(lib), cwd=baseline_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("relrocheck: libdemo.so: ok")


@pytest.mark.parametrize("variant", sorted(FAILING))
def test_default_policy_fails_new_and_grown_pointer_tables_by_name(
        builds: dict[str, Path], baseline_dir: Path, variant: str) -> None:
    symbol = FAILING[variant]
    proc = run_cli("check", "--format", "json", str(builds[variant]), cwd=baseline_dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    import json

    (lib,) = json.loads(proc.stdout)["libraries"]
    named = [v for v in lib["violations"] if v["symbol"] == symbol]
    assert named, lib["violations"]
    nm_entries = next(s["size"] for s in oracle.symbols(builds[variant]) if s["name"] == symbol)
    word = 8 if oracle.elf_header(builds[variant])["Class"] == "ELF64" else 4
    if variant == "table":
        assert named[0]["kind"] == "new_symbol" and named[0]["new"] == len(LEVELS)
        assert nm_entries == len(LEVELS) * word
    else:
        old_size = next(s["size"] for s in oracle.symbols(builds["v1"]) if s["name"] == symbol)
        assert named[0]["kind"] == "regression"
        assert (named[0]["old"], named[0]["new"]) == (old_size // word, nm_entries // word)
    text = run_cli("check", str(builds[variant]), cwd=baseline_dir).stdout
    assert symbol in text and "allowlist" in text
    # A new import is no excuse for the own-exports GOT advice.
    assert "[got]" not in run_cli("check", str(builds["getenv"]), cwd=baseline_dir).stdout


STRICT = "regression:\n  relocations: 0\n  writable_bytes: 0\n  tight: true\n"


@pytest.mark.parametrize("variant", [v for v in PASSING if v != "rebuild"] + sorted(FAILING))
def test_strict_policy_fails_every_change(builds: dict[str, Path], baseline_dir: Path,
                                          variant: str, tmp_path: Path) -> None:
    lib = _need(builds, variant)
    policy = tmp_path / "strict.yaml"
    policy.write_text(STRICT)
    proc = run_cli("check", str(lib), "--policy", str(policy), "--baseline-file",
                   str(baseline_dir / "relro-baseline.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # And the rebuild, identical, still passes the strict policy.
    proc = run_cli("check", str(builds["rebuild"]), "--policy", str(policy), "--baseline-file",
                   str(baseline_dir / "relro-baseline.json"))
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("entry, passes", [
    ("hint: string_pointer_table", True),
    ("hint: cxx_vtable", False),
    ("section: .data.rel.ro", True),
    ("{hint: string_pointer_table, section: .data}", False),  # every criterion must match
    ("source: '*levels.c'", True),
    ("source: '*.eo.c'", False),
])
def test_allowlist_by_hint_kind_section_and_source(builds: dict[str, Path], baseline_dir: Path,
                                                   tmp_path: Path, entry: str,
                                                   passes: bool) -> None:
    folder = tmp_path / "g"
    # Rebuilt with -g: source paths come from DWARF.
    lib = _build(folder, "cc", ["-O2", "-g"], {"levels.c": LEVELS_TABLE})
    assert "levels" in {s["name"] for s in oracle.symbols(lib)}
    policy = tmp_path / "relro.yaml"
    policy.write_text(f"allow:\n  - {entry}\n")
    proc = run_cli("check", str(lib), "--policy", str(policy), "--baseline-file",
                   str(baseline_dir / "relro-baseline.json"))
    assert proc.returncode == (0 if passes else 1), proc.stdout + proc.stderr
    if not passes:
        assert "levels" in proc.stdout and "allowlist it" in proc.stdout


README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_policies_load_and_judge(builds: dict[str, Path], baseline_dir: Path,
                                        tmp_path: Path) -> None:
    import re

    section = README.read_text().split("## `relrocheck check`", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2, blocks
    strict, tolerant = (tmp_path / "strict.yaml", tmp_path / "tolerant.yaml")
    strict.write_text(blocks[0])
    tolerant.write_text(blocks[1])
    base = ("--baseline-file", str(baseline_dir / "relro-baseline.json"))
    # The strict one fails a new import; the tolerant one passes it, and the grown table
    # too (8 more relocations are within its data_relocations allowance) but not the new
    # string table, which no allowlist entry matches.
    assert run_cli("check", str(builds["getenv"]), "--policy", str(strict), *base
                   ).returncode == 1
    assert run_cli("check", str(builds["getenv"]), "--policy", str(tolerant), *base
                   ).returncode == 0
    proc = run_cli("check", str(builds["table"]), "--policy", str(tolerant), *base)
    assert proc.returncode == 1 and "levels" in proc.stdout


LOCAL_STATIC = """
const char *lib_name(int i) {
    static const char *names[] = {"alpha", "beta", "gamma"};
    return names[i % 3];
}
"""


@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang")
def test_local_statics_keep_their_key_across_compilers(tmp_path: Path) -> None:
    libs = {}
    for cc in ("gcc", "clang"):
        folder = tmp_path / cc
        folder.mkdir()
        (folder / "n.c").write_text(LOCAL_STATIC)
        libs[cc] = folder / "libnames.so"
        subprocess.run([cc, "-O2", "-fPIC", "-shared", "-o", str(libs[cc]), "n.c"], cwd=folder,
                       check=True, capture_output=True, timeout=120)
    raw = {cc: {s["name"] for s in oracle.symbols(p) if "names" in s["name"]}
           for cc, p in libs.items()}
    # The premise, from nm: each compiler decorates the same object its own way.
    assert raw["gcc"] != raw["clang"], raw
    assert run_cli("--baseline", "update", str(libs["gcc"]), cwd=tmp_path).returncode == 0
    proc = run_cli("check", str(libs["clang"]), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    import json

    entry = json.loads((tmp_path / "relro-baseline.json").read_text())["libraries"]
    assert "names" in entry["libnames.so"]["symbols"]


def _so(folder: Path, soname: str, changes: dict[str, str] | None = None) -> Path:
    lib = _build(folder, "cc", ["-O2", f"-Wl,-soname,{soname}"], changes or {})
    return lib.rename(folder / soname)


def test_soname_bump_follows_the_previous_entry_and_prune_drops_it(tmp_path: Path) -> None:
    v1 = _so(tmp_path / "one", "libdemo.so.1")
    v2 = _so(tmp_path / "two", "libdemo.so.2")
    v2_table = _so(tmp_path / "three", "libdemo.so.2", {"levels.c": LEVELS_TABLE})
    other = _so(tmp_path / "other", "libother.so.1")
    assert oracle.dynamic(v2)["SONAME"] == ["libdemo.so.2"]
    assert run_cli("--baseline", "update", str(v1), str(other), cwd=tmp_path).returncode == 0
    proc = run_cli("check", str(v2), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "note: SONAME changed: compared with the entry of libdemo.so.1" in proc.stdout
    # Compared for real: the new table in the bumped library fails against the old entry.
    proc = run_cli("check", str(v2_table), cwd=tmp_path)
    assert proc.returncode == 1 and "levels" in proc.stdout
    proc = run_cli("--baseline", "update", "--prune", str(v2), str(other), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "pruned from relro-baseline.json: libdemo.so.1" in proc.stdout
    import json

    entries = json.loads((tmp_path / "relro-baseline.json").read_text())["libraries"]
    assert set(entries) == {"libdemo.so.2", "libother.so.1"}
    assert run_cli("check", "--prune", str(v2), cwd=tmp_path).returncode == 2


def test_got_changes_are_shown_by_name(builds: dict[str, Path], baseline_dir: Path,
                                       tmp_path: Path) -> None:
    def plt_symbols(path: Path) -> set[str]:
        out = subprocess.run(["readelf", "-rW", str(path)], capture_output=True, text=True,
                             check=True).stdout
        return {line.split()[4].split("@")[0] for line in out.splitlines()
                if "JUMP_SLOT" in line and len(line.split()) > 4}

    # The premise, from readelf: one more PLT slot, for getenv.
    assert plt_symbols(builds["getenv"]) - plt_symbols(builds["v1"]) == {"getenv"}
    policy = tmp_path / "strict.yaml"
    policy.write_text(STRICT)
    proc = run_cli("check", str(builds["getenv"]), "--policy", str(policy), "--baseline-file",
                   str(baseline_dir / "relro-baseline.json"))
    assert proc.returncode == 1
    assert "new import: getenv (external, .got.plt, 8 B)" in proc.stdout
    assert "[got]" not in proc.stdout  # the own-exports advice is not about this change
    # -z now moves slots from .got.plt to .got: no import came or went.
    proc = run_cli("diff", str(builds["v1"]), str(builds["now"]))
    assert proc.returncode == 0 and "import:" not in proc.stdout
    proc = run_cli("diff", str(builds["getenv"]), str(builds["v1"]))
    assert "removed import: getenv (external, .got.plt, 8 B)" in proc.stdout


def test_another_configuration_passes_with_a_one_line_note(builds: dict[str, Path],
                                                            baseline_dir: Path) -> None:
    def comment(path: Path) -> str:
        return subprocess.run(["readelf", "-p", ".comment", str(path)], capture_output=True,
                              text=True, check=True).stdout

    notes = {}
    for variant in ("rebuild", "now", "clang"):
        if variant not in builds:
            continue
        proc = run_cli("check", str(builds[variant]), cwd=baseline_dir)
        assert proc.returncode == 0, proc.stdout
        notes[variant] = [line for line in proc.stdout.splitlines() if "note:" in line]
    assert notes["rebuild"] == []
    (now,) = notes["now"]
    assert "BIND_NOW off -> on" in now and "BIND_NOW" in oracle.dynamic_flags(builds["now"])
    if "clang" in notes:
        assert "clang" in comment(builds["clang"]) and "clang" not in comment(builds["v1"])
        (clang,) = notes["clang"]
        assert "built differently from the baseline (toolchain" in clang and "clang" in clang


def test_padding_and_zero_fill_are_not_baseline_symbols(builds: dict[str, Path],
                                                        baseline_dir: Path) -> None:
    import json

    from relrocheck.analyze import analyze

    lib = analyze(str(builds["v1"]))
    padding = [s for s in lib.symbols if s.unattributed and not s.relocations and s.size]
    bss = [s for s in lib.symbols if s.section == ".bss" and not s.relocations and s.size]
    entry = json.loads((baseline_dir / "relro-baseline.json").read_text()
                       )["libraries"]["libdemo.so"]["symbols"]
    assert bss, "the premise: lib_version's static buffer lives in .bss"
    assert "version" in {s["name"] for s in oracle.symbols(builds["v1"])} or any(
        s["name"].startswith("version.") for s in oracle.symbols(builds["v1"]))
    assert not any(s.name in entry for s in padding + bss)
    # Every symbol with relocations is there, with nm's size.
    sizes = {s["name"]: s["size"] for s in oracle.symbols(builds["v1"])}
    assert entry["colors"]["bytes"] == sizes["colors"] and entry["colors"]["relocations"] == 8


def test_compiler_flags_from_debug_info_are_recorded_and_a_change_is_noted(
        tmp_path: Path) -> None:
    """Built with -g, the baseline records the layout flags of DW_AT_producer; a check of an
    -O0 build against an -O2 baseline passes with a note naming the flags (readelf's
    producer strings are the oracle)."""
    o2 = _build(tmp_path / "g-O2", "cc", ["-O2", "-g"], {})
    o0 = _build(tmp_path / "g-O0", "cc", ["-O0", "-g"], {})

    def producer_flags(path: Path) -> set[str]:
        out = subprocess.run(["readelf", "--debug-dump=info", str(path)], capture_output=True,
                             text=True, check=True).stdout
        producers = [line.split("):", 1)[1] for line in out.splitlines()
                     if "DW_AT_producer" in line]
        return {t for p in producers for t in p.split() if t.startswith("-O")}

    assert producer_flags(o2) == {"-O2"} and producer_flags(o0) == {"-O0"}
    folder = tmp_path / "baseline"
    folder.mkdir()
    proc = run_cli("--baseline", "update", str(o2), cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recorded = json.loads((folder / "relro-baseline.json").read_text())
    (entry,) = recorded["libraries"].values()
    assert "-O2" in entry["build"]["flags"]
    proc = run_cli("check", str(o0), cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (note,) = [line for line in proc.stdout.splitlines() if "note:" in line]
    assert "flags" in note and "-O2" in note and "-O0" in note
