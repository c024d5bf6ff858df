"""Shared by the gate tests: one C library in several versions, the CLI as a subprocess, and
the totals a baseline records, computed independently from readelf and nm (tests/oracle.py).

The versions are the changes the gate exists for:
- `table`: a new non-const table of string pointers (.data, one relocation per entry);
- `constify`: `colors` becomes `const char *const` (moves .data -> .data.rel.ro, same
  relocations) and the pointer-free `counters` becomes const (leaves writable data);
- `ops`: a new non-const struct with a function pointer and a name pointer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import oracle
from libbuild import build_library

import relrocheck

PACKAGE_ROOT = str(Path(relrocheck.__file__).resolve().parent.parent)

ADDED_TABLE = "added_names"
ADDED_TABLE_ENTRIES = 8
ADDED_OPS = "added_ops"


def gate_source(table: bool = False, constify: bool = False, ops: bool = False) -> str:
    qualifier = "const char *const" if constify else "const char *"
    counters = "const int" if constify else "int"
    src = f"""
#include <stddef.h>

{qualifier} colors[12] = {{"red", "green", "blue", "cyan", "magenta", "yellow",
                         "black", "white", "orange", "purple", "brown", "grey"}};
{counters} counters[64] = {{1, 2, 3}};

const char *color(size_t i) {{ return colors[i % 12]; }}
int counter(int i) {{ return counters[i & 63]; }}
"""
    if table:
        src += f"""
const char *{ADDED_TABLE}[{ADDED_TABLE_ENTRIES}] = {{"alpha", "beta", "gamma", "delta",
                                                     "epsilon", "zeta", "eta", "theta"}};
const char *added_name(size_t i) {{ return {ADDED_TABLE}[i % {ADDED_TABLE_ENTRIES}]; }}
"""
    if ops:
        src += f"""
struct ops {{ int (*run)(int); const char *name; }};
static int run_impl(int x) {{ return x + 1; }}
struct ops {ADDED_OPS} = {{ run_impl, "ops" }};
int run_ops(int x) {{ return {ADDED_OPS}.run(x); }}
"""
    return src


def build_gate_lib(folder: Path, name: str = "gate", flags: tuple[str, ...] = (),
                   **version: bool) -> Path:
    return build_library(folder, name, gate_source(**version), flags=flags)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "relrocheck", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env, check=False)


def assert_one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, exactly one line on stderr, `relrocheck: error:` and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("relrocheck: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def oracle_totals(path: Path) -> dict[str, int]:
    """The regression metrics of a library, from readelf and nm alone."""
    sections = oracle.sections(path)
    writable = sum(s["size"] for s in sections.values()
                   if "W" in s["flags"] and s["type"] != "NOBITS")
    zero_fill = sum(s["size"] for s in sections.values()
                    if "W" in s["flags"] and s["type"] == "NOBITS")
    word = 8 if oracle.elf_header(path)["Class"] == "ELF64" else 4
    init = sum(s["size"] // word for s in sections.values()
               if s["type"] in ("INIT_ARRAY", "PREINIT_ARRAY"))
    dt_init = 1 if "INIT" in oracle.dynamic(path) else 0
    return {
        "relocations": oracle.relocation_total(path),
        "relocated_pages": oracle.pages_with_relocations(path),
        "writable_bytes": writable,
        "zero_fill_bytes": zero_fill,
        "static_initializers": init + dt_init,
        "symbolic_relocations": sum(
            n for t, n in oracle.relocation_type_counts(path).items()
            if t.endswith(("_64", "GLOB_DAT"))),
    }


def nm_size(path: Path, name: str) -> int:
    sizes = [s["size"] for s in oracle.symbols(path) if s["name"] == name]
    assert len(sizes) == 1, (name, sizes)
    return sizes[0]


def nm_section(path: Path, name: str) -> str:
    (section,) = {s["section"] for s in oracle.symbols(path) if s["name"] == name}
    return section
