"""`relrocheck check` end to end on real libraries built in two versions: the gate fails with
the expected rows, `--baseline update` makes it pass and keeps unrelated entries, hard rules,
limits and the allowlist work, and the build-system contract (--stamp, --depfile) holds."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import oracle
import pytest
from gatelibs import (
    ADDED_OPS,
    ADDED_TABLE,
    ADDED_TABLE_ENTRIES,
    PACKAGE_ROOT,
    assert_one_error_line,
    build_gate_lib,
    nm_section,
    nm_size,
    oracle_totals,
    run_cli,
)

from relrocheck import baseline

GATED = ("relocated_pages", "relocations", "static_initializers", "writable_bytes")
STRICT_POLICY = "regression:\n  relocations: 0\n  writable_bytes: 0\n"


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate")
    return {
        "v1": build_gate_lib(root / "v1"),
        "table": build_gate_lib(root / "table", table=True),
        "constify": build_gate_lib(root / "constify", constify=True),
        "ops": build_gate_lib(root / "ops", ops=True),
        "other": build_gate_lib(root / "other", name="other"),
    }


@pytest.fixture
def recorded(tmp_path: Path, libs: dict[str, Path]) -> Path:
    """A baseline holding v1 of libgate.so and an unrelated libother.so."""
    path = tmp_path / "relro-baseline.json"
    proc = run_cli("--baseline", "update", str(libs["v1"]), str(libs["other"]),
                   "--baseline-file", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


def check_json(*args: str, cwd: Path | None = None) -> tuple[int, dict]:
    proc = run_cli("check", "--format", "json", *args, cwd=cwd)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr == ""
    return proc.returncode, json.loads(proc.stdout)


def expected_regressions(old: Path, new: Path) -> set[str]:
    """Gated metrics that grew, according to readelf and nm."""
    before, after = oracle_totals(old), oracle_totals(new)
    return {m for m in GATED if after[m] > before[m]}


def test_new_string_pointer_table_fails_with_its_row_until_accepted(
        tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    table = libs["table"]
    # The strict policy: every count and byte gated, as well as the defaults.
    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT_POLICY)
    code, doc = check_json(str(table), "--baseline-file", str(recorded), "--policy", str(strict))
    assert code == 1 and doc["status"] == "fail"
    (lib,) = doc["libraries"]
    violations = {(v["kind"], v["metric"]) for v in lib["violations"]}
    assert ("new_symbol", "symbol") in violations
    assert {m for k, m in violations if k == "regression"} == expected_regressions(
        libs["v1"], table) | {"data_relocations"}
    relocs = next(v for v in lib["violations"] if v["metric"] == "relocations")
    assert (relocs["old"], relocs["new"]) == (oracle.relocation_total(libs["v1"]),
                                              oracle.relocation_total(table))
    new_symbol = next(v for v in lib["violations"] if v["kind"] == "new_symbol")
    assert new_symbol["symbol"] == ADDED_TABLE

    rows = {r["name"]: r for r in lib["diff"]["symbols"]}
    row = rows[ADDED_TABLE]
    assert row["status"] == "added" and row["section"] == nm_section(table, ADDED_TABLE)
    assert row["new_bytes"] == nm_size(table, ADDED_TABLE) == ADDED_TABLE_ENTRIES * 8
    assert row["new_relocations"] == oracle.relocations_per_symbol(table)[ADDED_TABLE]
    assert lib["diff"]["symbols"][0]["name"] == ADDED_TABLE  # the most relocations first
    summary = lib["diff"]["summary"]
    assert summary["added"] == 1 and summary["removed"] == 0
    assert summary["relocations_up"] >= ADDED_TABLE_ENTRIES
    assert doc["accept_command"] == shlex.join(["relrocheck", "--baseline", "update", str(table),
                                                "--policy", str(strict),
                                                "--baseline-file", str(recorded)])

    other_before = baseline.read(str(recorded))["libother.so"]  # type: ignore[index]
    # The exact command printed is the one that accepts the change.
    argv = shlex.split(doc["accept_command"])
    assert argv[0] == "relrocheck"
    proc = run_cli(*argv[1:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"relrocheck: libgate.so: recorded in {recorded}" in proc.stdout
    assert "add/remove: 1/0" in proc.stdout
    code, doc = check_json(str(table), "--baseline-file", str(recorded))
    assert code == 0 and doc["libraries"][0]["violations"] == []
    stored = baseline.read(str(recorded))
    assert stored is not None and stored["libother.so"] == other_before
    assert stored["libgate.so"].symbols[ADDED_TABLE].relocations == ADDED_TABLE_ENTRIES


def test_failure_text_shows_rows_totals_and_what_to_do_next(libs: dict[str, Path],
                                                           recorded: Path) -> None:
    proc = run_cli(str(libs["table"]), "--baseline-file", str(recorded))  # default command
    assert proc.returncode == 1 and proc.stderr == ""
    out = proc.stdout
    assert out.startswith("relrocheck: libgate.so: FAIL (")
    size = nm_size(libs["table"], ADDED_TABLE)
    relocs = oracle.relocations_per_symbol(libs["table"])[ADDED_TABLE]
    assert f"new symbol in writable data: {ADDED_TABLE} (.data, {size} bytes, {relocs} " \
           "relocations)" in out
    summary = next(line for line in out.splitlines() if "add/remove:" in line)
    pages = oracle.pages_with_relocations(libs["v1"]), oracle.pages_with_relocations(libs["table"])
    assert summary.strip().startswith("add/remove: 1/0 grow/shrink: ")
    assert summary.endswith(f"relocated pages: {pages[0]} -> {pages[1]}")
    row = next(line for line in out.splitlines() if line.endswith(f" {ADDED_TABLE}"))
    assert row.split()[:6] == ["0", str(size), f"+{size}", "0", str(relocs), f"+{relocs}"]
    assert "kind             section" in out and "totals: relocations " in out
    tail = out[out.index("what to do next:"):]
    assert "if the change is intended, accept it" in tail
    assert tail.rstrip().endswith(shlex.join(["relrocheck", "--baseline", "update",
                                              str(libs["table"]), "--baseline-file",
                                              str(recorded)]))


def test_failure_offers_the_fix_hint_of_the_worst_new_row(libs: dict[str, Path],
                                                          recorded: Path) -> None:
    from relrocheck.analyze import analyze

    symbol = analyze(str(libs["table"])).symbol(ADDED_TABLE)
    # The fixture's new table holds pointers to string literals (gatelibs.gate_source).
    assert symbol is not None and symbol.hint is not None
    assert symbol.hint.kind == "string_pointer_table"
    code, doc = check_json(str(libs["table"]), "--baseline-file", str(recorded))
    assert code == 1
    hints = doc["libraries"][0]["hints"]
    assert hints[0] == {"symbol": ADDED_TABLE, "kind": symbol.hint.kind,
                        "advice": symbol.hint.advice}
    assert doc["next_steps"][0] == (f"fix {ADDED_TABLE} in libgate.so: {symbol.hint.advice} "
                                    f"[{symbol.hint.kind}]")


CXX_V1 = "int plain(int x) { return x + 1; }\n"
CXX_V2 = CXX_V1 + """
namespace shapes {
struct Shape { virtual ~Shape(); virtual int sides() const; };
Shape::~Shape() {}
int Shape::sides() const { return 0; }
}
"""


def test_allowlist_matches_demangled_cxx_names(tmp_path: Path) -> None:
    if shutil.which("c++filt") is None or shutil.which("c++") is None:
        pytest.skip("needs c++ and c++filt")
    from libbuild import build_library

    v1 = build_library(tmp_path / "v1", "shapes", CXX_V1, lang="c++")
    v2 = build_library(tmp_path / "v2", "shapes", CXX_V2, lang="c++")
    vtable = "_ZTVN6shapes5ShapeE"
    assert any(s["name"] == vtable for s in oracle.symbols(v2))
    base = tmp_path / "b.json"
    assert run_cli("--baseline", "update", str(v1), "--baseline-file", str(base)).returncode == 0
    # The key stays raw; the demangled name (from c++filt itself) is beside it, for review.
    base2 = tmp_path / "b2.json"
    assert run_cli("--baseline", "update", str(v2), "--baseline-file", str(base2)
                   ).returncode == 0
    recorded = json.loads(base2.read_text())["libraries"]["libshapes.so"]["symbols"]
    mangled = next(n for n in recorded if n.startswith("_ZT"))
    readable = subprocess.run(["c++filt", mangled], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert readable != mangled and recorded[mangled]["demangled"] == readable
    assert all("demangled" not in row for name, row in recorded.items()
               if not name.startswith("_Z"))
    policy = tmp_path / "relro.yaml"
    growth = ("regression:\n  relocations: null\n  writable_bytes: null\n"
              "  relocated_pages: null\n  data_relocations: null\n")
    policy.write_text(growth)
    code, doc = check_json(str(v2), "--baseline-file", str(base), "--policy", str(policy))
    new = {v["symbol"] for v in doc["libraries"][0]["violations"] if v["kind"] == "new_symbol"}
    assert code == 1 and vtable in new
    # The same glob on the raw name would not match: only the demangled name does.
    policy.write_text(growth + "allow:\n  - symbol: 'vtable for shapes::*'\n"
                      "  - symbol: 'typeinfo*for shapes::*'\n")
    code, doc = check_json(str(v2), "--baseline-file", str(base), "--policy", str(policy))
    remaining = {v["symbol"] for v in doc["libraries"][0]["violations"]}
    assert vtable not in remaining
    assert all(not name.startswith(("_ZTVN6shapes", "_ZTIN6shapes")) for name in remaining)
    assert code == (1 if remaining else 0)


def test_markdown_fits_a_pull_request_comment(libs: dict[str, Path], recorded: Path) -> None:
    proc = run_cli("check", "--format", "markdown", str(libs["table"]), "--baseline-file",
                   str(recorded))
    assert proc.returncode == 1
    md = proc.stdout
    assert md.startswith("### ❌ `libgate.so`: FAIL (")
    assert "| symbol | section | bytes | Δ bytes | relocations | Δ relocations |" in md
    assert f"| `{ADDED_TABLE}` | `.data` | 0 → 64 | +64 | 0 → 8 | +8 |" in md
    assert "<details><summary>Sections and totals</summary>" in md
    # Every bucket the text diff shows is in the Markdown too, as code (a raw `<...>` would
    # vanish as an HTML tag in a pull-request comment).
    text = run_cli("check", str(libs["table"]), "--baseline-file", str(recorded)).stdout
    buckets = sorted(set(re.findall(r"<unattributed in [^>]+>", text)))
    assert buckets, text
    assert all(f"`{bucket}`" in md for bucket in buckets)
    assert "```sh\nrelrocheck --baseline update " in md


def test_constified_arrays_pass_and_suggest_refreshing_the_baseline(
        tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    constify = libs["constify"]
    assert expected_regressions(libs["v1"], constify) == set()  # the premise, per readelf
    code, doc = check_json(str(constify), "--baseline-file", str(recorded))
    assert code == 0, doc
    rows = {r["name"]: r for r in doc["libraries"][0]["diff"]["symbols"]}
    # const char *const: same relocations, now read-only after relocation.
    assert (rows["colors"]["old_section"], rows["colors"]["section"]) == (".data", nm_section(
        constify, "colors")) == (".data", ".data.rel.ro")
    assert rows["colors"]["relocations_delta"] == 0
    # A pointer-free const array leaves writable data entirely.
    assert rows["counters"]["status"] == "removed"
    assert rows["counters"]["old_bytes"] == nm_size(libs["v1"], "counters")
    assert doc["accept_command"] is not None

    text = run_cli("check", str(constify), "--baseline-file", str(recorded))
    assert text.returncode == 0
    assert "the baseline is stale" in text.stdout and "--baseline update" in text.stdout

    policy = tmp_path / "tight.yaml"
    # writable_bytes is gated by a strict policy only; tight then fails its shrink too.
    policy.write_text("regression:\n  tight: true\n  writable_bytes: 0\n")
    code, doc = check_json(str(constify), "--baseline-file", str(recorded), "--policy",
                           str(policy))
    assert code == 1
    stale = [v for v in doc["libraries"][0]["violations"] if v["kind"] == "stale_baseline"]
    assert [v["metric"] for v in stale] == ["writable_bytes"]
    assert stale[0]["old"] == oracle_totals(libs["v1"])["writable_bytes"]


def test_struct_with_function_pointer_needs_the_allowlist(tmp_path: Path, libs: dict[str, Path],
                                                          recorded: Path) -> None:
    ops = libs["ops"]
    # Growth allowed, so only the new-symbol rule can fail.
    growth = ("regression:\n  relocations: null\n  writable_bytes: null\n  relocated_pages: null\n"
              "  data_relocations: null\n")
    policy = tmp_path / "relro.yaml"
    policy.write_text(growth)
    code, doc = check_json(str(ops), "--baseline-file", str(recorded), "--policy", str(policy))
    assert code == 1
    (violation,) = doc["libraries"][0]["violations"]
    assert violation["kind"] == "new_symbol" and violation["symbol"] == ADDED_OPS
    assert violation["new"] == oracle.relocations_per_symbol(ops)[ADDED_OPS] == 2

    policy.write_text(growth + "allow:\n  - symbol: added_*\n    reason: plugin table\n")
    code, doc = check_json(str(ops), "--baseline-file", str(recorded), "--policy", str(policy))
    assert code == 0, doc

    # Its own limits replace the per-symbol defaults, and say where they come from.
    policy.write_text(growth + "limits:\n  symbol_relocations: 100\nallow:\n"
                      "  - symbol: added_*\n    limits: {relocations: 1}\n")
    code, doc = check_json(str(ops), "--baseline-file", str(recorded), "--policy", str(policy))
    assert code == 1
    (violation,) = doc["libraries"][0]["violations"]
    assert (violation["kind"], violation["metric"], violation["new"], violation["limit"]) == (
        "limit", "symbol_relocations", 2, 1)
    assert f"allowlist entry at {policy}:9" in violation["message"]

    policy.write_text("regression:\n  new_symbols: allow\n  relocations: {absolute: 3}\n"
                      "  writable_bytes: {percent: 100}\n  data_relocations: null\n")
    code, doc = check_json(str(ops), "--baseline-file", str(recorded), "--policy", str(policy))
    expected = expected_regressions(libs["v1"], ops) - {"relocations", "writable_bytes"}
    assert {v["metric"] for v in doc["libraries"][0]["violations"]} == expected
    assert code == (1 if expected else 0)


def test_limits_by_default_and_per_library(tmp_path: Path, libs: dict[str, Path]) -> None:
    table = libs["table"]
    sections = oracle.sections(table)
    data_bytes = sections[".data"]["size"]
    policy = tmp_path / "relro.yaml"
    policy.write_text(f"""\
baseline:
  missing: pass
limits:
  symbol_relocations: 10
  writable_bytes_by_kind: {{data: {data_bytes - 1}}}
  relocations: {oracle.relocation_total(table) - 1}
""")
    code, doc = check_json(str(table), "--policy", str(policy), cwd=tmp_path)
    assert code == 1
    found = {(v["metric"], v["symbol"]): v for v in doc["libraries"][0]["violations"]}
    assert set(found) == {("writable_bytes_by_kind.data", None), ("relocations", None),
                          ("symbol_relocations", "colors")}
    assert found[("writable_bytes_by_kind.data", None)]["new"] == data_bytes
    assert found[("symbol_relocations", "colors")]["new"] == oracle.relocations_per_symbol(
        table)["colors"] == 12
    assert "limits and hard rules are not accepted by the baseline" in "\n".join(
        doc["next_steps"])
    assert doc["accept_command"] is None  # updating the baseline would not help

    policy.write_text(policy.read_text() + """\
libraries:
  - match: "libgate.so"
    limits:
      symbol_relocations: null
      relocations: null
      writable_bytes_by_kind: {data: null}
""")
    code, doc = check_json(str(table), "--policy", str(policy), cwd=tmp_path)
    assert code == 0, doc


def test_update_refuses_a_library_that_breaks_a_limit_and_writes_nothing(
        tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    before = recorded.read_bytes()
    policy = tmp_path / "relro.yaml"
    policy.write_text("limits:\n  symbol_relocations: 4\n")
    proc = run_cli("--baseline", "update", str(libs["table"]), str(libs["other"]),
                   "--baseline-file", str(recorded), "--policy", str(policy))
    assert proc.returncode == 1
    assert "FAIL, not recorded" in proc.stdout and "nothing was written" in proc.stdout
    assert recorded.read_bytes() == before


def test_missing_baseline_fails_with_the_command_that_creates_it(tmp_path: Path,
                                                                 libs: dict[str, Path]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    lib = shutil.copy(libs["v1"], work / "libgate.so")
    proc = run_cli("check", "libgate.so", cwd=work)
    assert proc.returncode == 1 and proc.stderr == ""
    assert "no baseline entry for libgate.so" in proc.stdout
    assert "record the baseline (then commit relro-baseline.json):" in proc.stdout
    command = proc.stdout.rstrip().splitlines()[-1].strip()
    # Absolute paths: the command works pasted anywhere, not only where the check ran.
    assert command == shlex.join(["relrocheck", "--baseline", "update", str(work / "libgate.so"),
                                  "--baseline-file", str(work / "relro-baseline.json")])
    assert not (work / "relro-baseline.json").exists()
    assert run_cli(*shlex.split(command)[1:], cwd=Path("/")).returncode == 0
    assert set(baseline.read(str(work / "relro-baseline.json")) or {}) == {"libgate.so"}
    assert run_cli("check", str(lib), cwd=work).returncode == 0


def test_missing_baseline_may_pass_when_the_policy_says_so(tmp_path: Path,
                                                          libs: dict[str, Path]) -> None:
    (tmp_path / "relro.yaml").write_text("baseline:\n  missing: pass\n")
    proc = run_cli("check", str(libs["v1"]), "--policy", "relro.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "ok without a baseline entry" in proc.stdout
    assert not (tmp_path / "relro-baseline.json").exists()


def test_baseline_lives_beside_the_policy_unless_overridden(tmp_path: Path,
                                                            libs: dict[str, Path]) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "relro.yaml").write_text("baseline:\n  file: data/base.json\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli("--baseline", "update", str(libs["v1"]), "--policy", "../conf/relro.yaml",
                   cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (conf / "data" / "base.json").is_file()
    proc = run_cli("--baseline", "update", str(libs["v1"]), "--policy", "../conf/relro.yaml",
                   "--baseline-file", "override.json", cwd=elsewhere)
    assert proc.returncode == 0 and (elsewhere / "override.json").is_file()


def test_textrel_fails_by_default_and_can_be_allowed(tmp_path: Path) -> None:
    obj = tmp_path / "textrel.o"
    subprocess.run(["cc", "-O2", "-fno-pic", "-mcmodel=large", "-c", "-x", "c", "-", "-o",
                    str(obj)], input="int counter;\nint *get(void) { return &counter; }\n",
                   text=True, check=True)
    lib = tmp_path / "libtextrel.so"
    proc = subprocess.run(["cc", "-shared", "-Wl,-z,notext", "-o", str(lib), str(obj)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        pytest.skip(f"the host linker refuses text relocations: {proc.stderr.strip()}")
    assert "TEXTREL" in oracle.dynamic(lib) or "TEXTREL" in oracle.dynamic_flags(lib)
    code, doc = check_json(str(lib), "--baseline-file", str(tmp_path / "b.json"))
    rules = [v for v in doc["libraries"][0]["violations"] if v["kind"] == "rule"]
    assert code == 1 and [v["metric"] for v in rules] == ["textrel"]
    assert ".text" in rules[0]["message"]
    # The baseline never accepts a broken hard rule.
    update = run_cli("--baseline", "update", str(lib), "--baseline-file", str(tmp_path / "b.json"))
    assert update.returncode == 1 and not (tmp_path / "b.json").exists()
    (tmp_path / "relro.yaml").write_text("rules:\n  forbid_textrel: false\n")
    update = run_cli("--baseline", "update", str(lib), "--baseline-file", str(tmp_path / "b.json"),
                     "--policy", str(tmp_path / "relro.yaml"))
    assert update.returncode == 0, update.stdout


def test_full_relro_can_be_required(tmp_path: Path) -> None:
    lazy = build_gate_lib(tmp_path / "lazy", flags=("-Wl,-z,relro,-z,lazy",))
    now = build_gate_lib(tmp_path / "now", flags=("-Wl,-z,relro,-z,now",))
    assert "BIND_NOW" in oracle.dynamic_flags(now)
    assert "BIND_NOW" not in oracle.dynamic_flags(lazy)
    (tmp_path / "relro.yaml").write_text("baseline: {missing: pass}\nrules:\n"
                                         "  minimum_relro: full\n")
    code, doc = check_json(str(lazy), "--policy", "relro.yaml", cwd=tmp_path)
    assert code == 1
    (violation,) = doc["libraries"][0]["violations"]
    assert violation["metric"] == "relro" and "-Wl,-z,relro,-z,now" in violation["message"]
    code, doc = check_json(str(now), "--policy", "relro.yaml", cwd=tmp_path)
    assert code == 0, doc


# --- the build-system contract ----------------------------------------------------------------


def test_stamp_only_on_success_and_depfile_always(tmp_path: Path, libs: dict[str, Path],
                                                  recorded: Path) -> None:
    folder = tmp_path / "out dir"
    stamp, depfile = folder / "sub" / "gate.stamp", folder / "gate #1.d"
    policy = tmp_path / "my policy.yaml"
    policy.write_text("# defaults\n")
    args = ("--policy", str(policy), "--baseline-file", str(recorded), "--stamp", str(stamp),
            "--depfile", str(depfile))
    assert run_cli("check", str(libs["v1"]), *args).returncode == 0
    assert stamp.is_file()
    escaped = [str(p).replace(" ", "\\ ").replace("#", "\\#") for p in (stamp, policy, recorded)]
    assert depfile.read_text() == (f"{escaped[0]}: {escaped[1]} {escaped[2]}\n"
                                   f"\n{escaped[1]}:\n\n{escaped[2]}:\n")

    depfile.unlink()
    assert run_cli("check", str(libs["table"]), *args).returncode == 1
    assert not stamp.exists(), "a failed check must not leave a stamp behind"
    assert depfile.read_text().startswith(f"{escaped[0]}: ")

    # Input errors: no stamp, but the depfile still names what to watch.
    depfile.unlink()
    recorded_bytes = recorded.read_bytes()
    recorded.write_text("{")
    assert_one_error_line(run_cli("check", str(libs["v1"]), *args), "truncated baseline")
    assert not stamp.exists() and depfile.is_file()
    recorded.write_bytes(recorded_bytes)

    # A successful update writes the stamp too.
    assert run_cli("--baseline", "update", str(libs["table"]), *args).returncode == 0
    assert stamp.is_file()


def test_stamp_or_depfile_that_cannot_be_written_is_one_error_line(
        tmp_path: Path, libs: dict[str, Path], recorded: Path) -> None:
    in_the_way = tmp_path / "a file"
    in_the_way.write_text("not a folder\n")
    base = ("--baseline-file", str(recorded))
    # A failed check with a stamp whose folder is a file: there is no stamp to remove, so the
    # verdict (exit 1) stands instead of an error about the stamp.
    proc = run_cli("check", str(libs["table"]), *base, "--stamp", str(in_the_way / "s"))
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    proc = run_cli("check", str(libs["v1"]), *base, "--stamp", str(in_the_way / "s"))
    assert_one_error_line(proc, f"cannot write stamp {in_the_way / 's'}: Not a directory")
    # A depfile that cannot be written fails the check, and a stamp of an earlier success
    # does not survive it.
    stamp = tmp_path / "ok.stamp"
    assert run_cli("check", str(libs["v1"]), *base, "--stamp", str(stamp)).returncode == 0
    proc = run_cli("check", str(libs["v1"]), *base, "--stamp", str(stamp), "--depfile",
                   str(in_the_way / "sub" / "d"))
    assert_one_error_line(proc, "cannot write depfile", "Not a directory")
    assert not stamp.exists()
    proc = run_cli("--baseline", "update", str(libs["v1"]), "--baseline-file",
                   str(in_the_way / "b.json"))
    assert_one_error_line(proc, "cannot write baseline: Not a directory")


def test_depfile_needs_a_stamp(libs: dict[str, Path], tmp_path: Path) -> None:
    proc = run_cli("check", str(libs["v1"]), "--depfile", str(tmp_path / "x.d"))
    assert_one_error_line(proc, "--depfile needs --stamp")


@pytest.mark.skipif(shutil.which("ninja") is None, reason="ninja is not installed")
def test_ninja_reruns_the_check_only_when_library_policy_or_baseline_change(
        tmp_path: Path, libs: dict[str, Path]) -> None:
    project = tmp_path / "a project"
    project.mkdir()
    lib = project / "libgate.so"
    shutil.copy(libs["v1"], lib)
    (project / "relro policy.yaml").write_text("baseline:\n  file: relro baseline.json\n")
    command = shlex.join(["env", f"PYTHONPATH={PACKAGE_ROOT}", *run_cli_argv()])
    (project / "build.ninja").write_text(f"""\
rule relro
  command = {command} check $in --policy "relro policy.yaml" --stamp $out --depfile $out.d
  depfile = $out.d
  deps = gcc
build gate.stamp: relro libgate.so
""")

    def ninja() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ninja", "-d", "explain"], cwd=project, capture_output=True,
                              text=True, timeout=120, check=False)

    first = ninja()
    assert first.returncode == 1 and "no baseline entry" in first.stdout
    assert run_cli("--baseline", "update", "libgate.so", "--policy", "relro policy.yaml",
                   cwd=project).returncode == 0
    assert ninja().returncode == 0
    assert "no work to do" in ninja().stdout
    (project / "relro policy.yaml").write_text("baseline:\n  file: relro baseline.json\n# x\n")
    rerun = ninja()
    assert rerun.returncode == 0 and "relro policy.yaml" in rerun.stderr + rerun.stdout
    assert "no work to do" in ninja().stdout
    shutil.copy(libs["table"], lib)
    assert ninja().returncode == 1
    assert run_cli("--baseline", "update", "libgate.so", "--policy", "relro policy.yaml",
                   cwd=project).returncode == 0
    assert ninja().returncode == 0
    assert "no work to do" in ninja().stdout
    # Another library recorded into the same baseline file: the check reruns.
    assert run_cli("--baseline", "update", str(libs["other"]), "--policy", "relro policy.yaml",
                   cwd=project).returncode == 0
    rerun = ninja()
    assert rerun.returncode == 0 and "relro baseline.json" in rerun.stderr
    assert "no work to do" in ninja().stdout


def run_cli_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "relrocheck"]


# --- bad input ----------------------------------------------------------------------------------


def test_unreadable_library_is_one_error_line(tmp_path: Path) -> None:
    proc = run_cli("check", str(tmp_path / "missing.so"), "--baseline-file",
                   str(tmp_path / "b.json"), "--stamp", str(tmp_path / "s"))
    assert_one_error_line(proc, "missing.so")
    assert not (tmp_path / "s").exists()


def test_update_with_an_unreadable_library_writes_nothing(tmp_path: Path,
                                                          libs: dict[str, Path]) -> None:
    path = tmp_path / "b.json"
    proc = run_cli("--baseline", "update", str(libs["v1"]), str(tmp_path / "missing.so"),
                   "--baseline-file", str(path))
    assert_one_error_line(proc, "missing.so")
    assert not path.exists()


def test_two_libraries_with_one_name_cannot_share_a_baseline(tmp_path: Path,
                                                             libs: dict[str, Path]) -> None:
    proc = run_cli("--baseline", "update", str(libs["v1"]), str(libs["table"]),
                   "--baseline-file", str(tmp_path / "b.json"))
    assert_one_error_line(proc, "are both named libgate.so")
    assert not (tmp_path / "b.json").exists()


def test_page_size_or_architecture_mismatch_is_an_error(tmp_path: Path, libs: dict[str, Path],
                                                        recorded: Path) -> None:
    proc = run_cli("check", str(libs["v1"]), "--baseline-file", str(recorded), "--page-size",
                   "16384")
    assert_one_error_line(proc, "recorded with page size 4096", "--page-size 4096")
    text = recorded.read_text().replace('"machine": "x86_64"', '"machine": "aarch64"')
    (tmp_path / "arm.json").write_text(text)
    proc = run_cli("check", str(libs["v1"]), "--baseline-file", str(tmp_path / "arm.json"))
    assert_one_error_line(proc, "recorded for aarch64", "one baseline file per architecture")
