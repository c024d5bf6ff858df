"""The policy file: schema validation with FILE:LINE:COL: key.path messages, safe loading,
defaults, per-library merging and the allowlist; and the shipped policy.example.yaml."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import jsonschema
import pytest
from gatelibs import assert_one_error_line, build_gate_lib, run_cli

from relrocheck.analyze import analyze
from relrocheck.errors import PolicyError
from relrocheck.model import SECTION_KINDS, Symbol
from relrocheck.policy import (
    DEFAULT_BASELINE_FILE,
    DEFAULT_GROWTH,
    MAX_POLICY_BYTES,
    REGRESSION_METRICS,
    SYMBOL_LIMITS,
    TOTAL_LIMITS,
    Growth,
    default_policy,
    load_policy,
    policy_schema,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "policy.example.yaml"


# (policy text, expected "LINE:COL: key.path: message" after the file name)
BROKEN = [
    ("limits:\n  rw_bytes: 5\n",
     "2:3: limits.rw_bytes: unknown key (did you mean 'writable_bytes'?)"),
    ("limits:\n  writable_bytes: lots\n",
     "2:19: limits.writable_bytes: 'lots' is not of type 'integer', 'null'"),
    ("limits:\n  relocations: -1\n",
     "2:16: limits.relocations: -1 is less than the minimum of 0"),
    ("limits:\n  writable_bytes: 10.5\n",
     "2:19: limits.writable_bytes: 10.5 is not of type 'integer'"),
    ("limits:\n  writable_bytes: true\n",
     "2:19: limits.writable_bytes: True is not of type 'integer'"),
    ("limits:\n  writable_bytes_by_kind:\n    readonly: 5\n",
     "3:5: limits.writable_bytes_by_kind.readonly: unknown key (known keys: bss, data,"),
    ("version: 2\n", "1:10: version: must be 1, not 2"),
    ("baseline:\n  missing: maybe\n",
     "2:12: baseline.missing: 'maybe' is not one of ['fail', 'pass']"),
    ("baseline:\n  file: ''\n", "2:9: baseline.file: '' should be non-empty"),
    ("rules:\n  forbid_textrel: 'yes'\n",
     "2:19: rules.forbid_textrel: 'yes' is not of type 'boolean'"),
    ("rules:\n  minimum_relro: fullest\n",
     "2:18: rules.minimum_relro: 'fullest' is not one of ['none', 'partial', 'full']"),
    ("regression:\n  relocations: {}\n", "2:16: regression.relocations: must not be empty"),
    ("regression:\n  relocations: {absolute: 1, percnt: 2}\n",
     "2:30: regression.relocations.percnt: unknown key (did you mean 'percent'?)"),
    ("regression:\n  relocations: {percent: -5}\n",
     "2:26: regression.relocations.percent: -5 is less than the minimum of 0"),
    ("regression:\n  relocations: {percent: .nan}\n",
     "2:26: regression.relocations.percent: .nan is not a finite number"),
    ("regression:\n  new_symbols: warn\n",
     "2:16: regression.new_symbols: 'warn' is not one of ['fail', 'allow']"),
    ("regression:\n  tight: 1\n", "2:10: regression.tight: 1 is not of type 'boolean'"),
    ("regression:\n  writable_bytes: [1]\n",
     "2:19: regression.writable_bytes: [1] is not of type 'integer', 'object', 'null'"),
    ("allow:\n  - reason: x\n", "2:5: allow[0]: an allowlist entry needs at least one of symbol, hint"),
    ("allow:\n  - symbol: ''\n", "2:13: allow[0].symbol: '' should be non-empty"),
    ("allow:\n  - symbol: foo\n    limits: {byte: 3}\n",
     "3:14: allow[0].limits.byte: unknown key (did you mean 'bytes'?)"),
    ("allow: {symbol: x}\n", "1:8: allow: {'symbol': 'x'} is not of type 'array'"),
    ("libraries:\n  - limits: {}\n", "2:5: libraries[0]: 'match' is a required property"),
    ("libraries:\n  - match: [libfoo*, 3]\n",
     "2:22: libraries[0].match[1]: 3 is not of type 'string'"),
    ("libraries:\n  - match: libfoo*\n    allow:\n      - symbol: x\n        libraries: y\n",
     "5:9: libraries[0].allow[0].libraries: unknown key"),
    ("libraries:\n  - match: a\n    regression:\n      relocations: lots\n",
     "4:20: libraries[0].regression.relocations: 'lots' is not of type"),
    ("- a\n", "1:1: (top level): ['a'] is not of type 'object'"),
    ("limits:\n  relocations: 1\n  relocations: 2\n",
     "3:3: limits.relocations: duplicate key (first at line 2)"),
    ("limits:\n  1: 2\n", "2:3: limits: keys must be strings, not '1'"),
    ("limits: &l {relocations: 1}\nregression: *l\n",
     "2:13: YAML alias *l is not allowed in a policy"),
    ("limits:\n  <<: {relocations: 5}\n", "2:3: limits: merge keys (<<) are not allowed"),
    ("limits: !!python/object/apply:os.system ['true']\n",
     "1:9: limits: tag tag:yaml.org,2002:python/object/apply:os.system is not allowed"),
    ("limits: [\n", "2:1: YAML syntax error: while parsing a flow node"),
    ("a: 1\n---\nb: 2\n", "2:1: YAML syntax error: expected a single document"),
    ("limits:\n\trelocations: 1\n", "2:1: YAML syntax error: while scanning for the next token"),
    ("limits:\n  relocations: " + "9" * 5000 + "\n",
     "2:16: limits.relocations: '9999999999999999999999999999999999999999' is not a valid value: "
     "not an integer, or too long"),
    ("limits:\n  relocations: !!int x\n",
     "2:16: limits.relocations: 'x' is not a valid value: not an integer, or too long"),
    ("baseline:\n  file: 2020-13-45\n",
     "2:9: baseline.file: '2020-13-45' is not a valid value: month must be in 1..12"),
    ('baseline:\n  file: "a\\0b"\n',
     "2:9: baseline.file: a file name cannot contain a NUL character"),
    ("libraries:\n  - match: x\n    allow:\n      - symbol: y\n        limits: {bytes: 1, "
     "foo: {bar: 1}}\n",
     "5:28: libraries[0].allow[0].limits.foo: unknown key (known keys: bytes, relocations)"),
]


@pytest.mark.parametrize("text, expected", BROKEN, ids=[e.split(":")[2].strip() + f"-{i}"
                                                        for i, (_t, e) in enumerate(BROKEN)])
def test_broken_policy_names_file_line_column_and_key(tmp_path: Path, text: str,
                                                      expected: str) -> None:
    path = tmp_path / "relro.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(str(path))
    assert str(info.value).startswith(f"{path}:{expected}"), str(info.value)
    assert "\n" not in str(info.value)


def test_enough_broken_policies_are_covered() -> None:
    assert len(BROKEN) >= 20


def test_broken_policy_on_the_command_line_is_one_error_line(tmp_path: Path) -> None:
    lib = build_gate_lib(tmp_path / "build")
    (tmp_path / "relro.yaml").write_text("version: 1\nlimits:\n  relocatons: 5\n")
    proc = run_cli("check", str(lib), "--policy", "relro.yaml", cwd=tmp_path)
    assert_one_error_line(proc, "relro.yaml:3:3: limits.relocatons: unknown key "
                                "(did you mean 'relocations'?)")
    assert proc.stdout == ""


def test_missing_policy_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: cannot read policy file: No such file"):
        load_policy(str(tmp_path / "nope.yaml"))
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(str(tmp_path))  # a folder


@pytest.mark.parametrize("content, expected", [
    (b"\x00\xb5\x9a binary \xff garbage", "not a YAML text file: invalid start byte at offset"),
    (b"limits:\n  relocations: \x01\n",
     "not a YAML text file: control characters are not allowed at offset 23"),
])
def test_policy_that_is_not_text_is_one_error_line(tmp_path: Path, content: bytes,
                                                   expected: str) -> None:
    lib = build_gate_lib(tmp_path / "build")
    (tmp_path / "relro.yaml").write_bytes(content)
    proc = run_cli("check", str(lib), "--policy", "relro.yaml", cwd=tmp_path)
    assert_one_error_line(proc, f"relro.yaml: {expected}")


def test_empty_or_comment_only_policy_means_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "relro.yaml"
    path.write_text("# nothing to say\n")
    policy = load_policy(str(path))
    assert policy.baseline_file == str(tmp_path / DEFAULT_BASELINE_FILE)
    assert policy.baseline_missing == "fail"
    lib = analyze(str(build_gate_lib(tmp_path)))
    assert policy.for_library(lib) == default_policy().for_library(lib)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    # The "billion laughs": 9 levels of 10 aliases would expand to 10**9 strings.
    lines = ['a0: &a0 "lol"']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    with pytest.raises(PolicyError, match=r"bomb\.yaml:2:\d+: YAML alias \*a0 is not allowed"):
        load_policy(str(path))
    assert time.monotonic() - start < 5


def test_huge_policy_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * (MAX_POLICY_BYTES // 10 + 1))
    assert path.stat().st_size > MAX_POLICY_BYTES
    with pytest.raises(PolicyError, match="larger than 1 MiB"):
        load_policy(str(path))


def test_deeply_nested_yaml_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("limits: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(PolicyError, match="deep.yaml"):
        load_policy(str(path))


# --- the schema -----------------------------------------------------------------------------


def test_schema_is_a_valid_json_schema_and_the_schema_command_prints_it() -> None:
    schema = policy_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)
    proc = run_cli("schema")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == schema
    report = run_cli("schema", "report")
    assert report.returncode == 0 and json.loads(report.stdout)["title"] == "relrocheck report"


def test_schema_keys_match_what_the_code_judges() -> None:
    defs = policy_schema()["$defs"]
    limits = set(defs["limits"]["properties"])
    assert limits == {*TOTAL_LIMITS, *SYMBOL_LIMITS, "writable_bytes_by_kind"}
    # Every writable section kind can be limited; "readonly" sections are TEXTREL, a rule.
    kinds = set(defs["limits"]["properties"]["writable_bytes_by_kind"]["properties"])
    assert kinds == set(SECTION_KINDS) - {"readonly"}
    assert set(defs["regression"]["properties"]) == {*REGRESSION_METRICS, "new_symbols", "tight",
                                                     "grown_symbols"}


# --- the shipped example --------------------------------------------------------------------


def test_example_policy_loads_and_uses_every_key_of_the_schema() -> None:
    """Every key of every schema object appears at least once in policy.example.yaml."""
    import yaml

    policy = load_policy(str(EXAMPLE))
    assert policy.allow and policy.libraries
    schema = policy_schema()
    defs = schema["$defs"]

    def resolve(node: dict) -> tuple[str, dict]:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            return name, defs[name]
        return "", node

    def keys_of(name: str, node: dict) -> set[tuple[str, str]]:
        out = set()
        for key, sub in node.get("properties", {}).items():
            out.add((name, key))
            sub_name, sub_node = resolve(sub)
            out |= keys_of(sub_name or f"{name}.{key}", sub_node)
        return out

    def used(name: str, node: dict, value: object) -> set[tuple[str, str]]:
        out = set()
        if isinstance(value, dict):
            for key, sub in value.items():
                out.add((name, key))
                if key in node.get("properties", {}):
                    sub_name, sub_node = resolve(node["properties"][key])
                    out |= used(sub_name or f"{name}.{key}", sub_node, sub)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            item_name, item_node = resolve(node["items"])
            for item in value:
                out |= used(item_name or name, item_node, item)
        return out

    every = set()
    for name, node in [("", schema), *defs.items()]:
        every |= keys_of(name, node)
    missing = every - used("", schema, yaml.safe_load(EXAMPLE.read_text()))
    assert not missing, f"policy.example.yaml does not show: {sorted(missing)}"


def test_example_policy_comments_every_key() -> None:
    """The first line of each block key (per key path) has a comment just above it; keys of a
    `libraries` entry are the top-level keys again, documented there."""
    lines = EXAMPLE.read_text().splitlines()
    stack: list[tuple[int, str]] = []
    seen: set[str] = set()
    commented: set[str] = set()
    uncommented = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(- )?([A-Za-z_]+):", line)
        if not m:
            continue
        indent = len(m.group(1)) + (2 if m.group(2) else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _i, k in stack] + [m.group(3)])
        stack.append((indent, m.group(3)))
        if path in seen:
            continue
        seen.add(path)
        if (i > 0 and lines[i - 1].strip().startswith("#")) or "#" in line:
            commented.add(path)
        else:
            uncommented.append(path)
    undocumented = [p for p in uncommented if p.removeprefix("libraries.") not in commented]
    assert not undocumented, f"keys without a comment: {undocumented}"


# --- typed policy: defaults, merging, allowlist ---------------------------------------------


def test_defaults_gate_pages_user_data_relocations_and_initializers() -> None:
    lib_policy = default_policy().for_library(_lib_named("libx.so.1", "/b/libx.so.1"))
    gated = {m for m, g in lib_policy.regression.growth.items() if g is not None}
    # Memory, not toolchain noise: all relocations and writable bytes only in a strict policy.
    assert gated == {"relocated_pages", "data_relocations", "static_initializers"}
    assert lib_policy.regression.grown_symbols == "fail"
    assert all(g.allowance(1000) == 0 for g in lib_policy.regression.growth.values() if g)
    assert lib_policy.regression.new_symbols == "fail" and not lib_policy.regression.tight
    assert lib_policy.rules.forbid_textrel and lib_policy.rules.minimum_relro == "none"
    assert set(DEFAULT_GROWTH) == set(REGRESSION_METRICS)


@pytest.mark.parametrize("growth, old, allowed", [
    (Growth(absolute=5), 1000, 5),
    (Growth(percent=1), 1000, 10),
    (Growth(percent=1), 150, 1),
    (Growth(absolute=16, percent=1), 1000, 16),  # the larger allowance wins
    (Growth(absolute=16, percent=1), 10000, 100),
    (Growth(percent=2.5), 1000, 25),
    (Growth(percent=1), 0, 0),
    (Growth(percent=1.15), 100000, 1150),  # 1.15% as written, not as a binary float
    (Growth(percent=1e308), 3, 3 * 10**306),
    (Growth(percent=10**400), 3, 3 * 10**398),
])
def test_growth_allowance_is_the_larger_of_absolute_and_percent(growth: Growth, old: int,
                                                                 allowed: int) -> None:
    assert growth.allowance(old) == allowed


def test_huge_percent_growth_is_judged_and_described(tmp_path: Path) -> None:
    lib = build_gate_lib(tmp_path / "build")
    (tmp_path / "relro.yaml").write_text(
        f"regression:\n  relocations: {{percent: {10**400}}}\n"
        "  static_initializers: {percent: 1.0e+308}\n")
    assert run_cli("--baseline", "update", str(lib), "--policy", "relro.yaml",
                   cwd=tmp_path).returncode == 0
    grown = build_gate_lib(tmp_path / "grown", table=True, ops=True)
    proc = run_cli("check", str(grown), "--policy", "relro.yaml", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "  - relocations grew" not in proc.stdout  # the allowance is practically unlimited
    assert Growth(percent=10**400).describe() == f"+{10**400}%"
    assert Growth(absolute=3, percent=2.0).describe() == "+3 or +2%"


def _lib_named(soname: str | None, path: str):
    from relrocheck.model import Library, Pages, RelocationSummary

    return Library(path=path, soname=soname, file_type="DYN", pie=False, machine="x86_64",
                   elf_class=64, endian="little", word_size=8, page_size=4096,
                   max_page_size=4096, file_size=0, build_id=None, sections=(), segments=(),
                   relro_range=None, relro="none", bind_now=False, textrel=False,
                   textrel_sections=(), init_array_entries=0, has_dt_init=False,
                   static_initializers=0,
                   relocations=RelocationSummary(0, {}, {}, {}, {}),
                   pages=Pages(4096, 0, 0, 0, 0), symbols=(), symbol_table=None)


def test_library_entries_merge_in_order_by_soname_or_file_name(tmp_path: Path) -> None:
    path = tmp_path / "relro.yaml"
    path.write_text("""\
limits:
  relocations: 100
  relocated_pages: 4
  writable_bytes_by_kind: {data: 10, relro: 20}
regression:
  relocations: {percent: 1}
allow:
  - symbol: everywhere
  - symbol: only_foo
    libraries: "libfoo.so*"
libraries:
  - match: "libfoo.so.*"
    limits:
      relocations: 500
      writable_bytes_by_kind: {relro: 99}
    regression:
      relocations: null
    allow:
      - symbol: foo_table
  - match: ["libfoo-*.so", "libfoo.so.1"]
    limits:
      relocated_pages: null
    rules:
      minimum_relro: full
""")
    policy = load_policy(str(path))
    foo = policy.for_library(_lib_named("libfoo.so.1", "/build/libfoo-1.2.so"))
    assert foo.limits.relocations == 500
    assert foo.limits.relocated_pages is None  # null removes the default's limit
    assert dict(foo.limits.writable_bytes_by_kind) == {"data": 10, "relro": 99}
    assert foo.regression.growth["relocations"] is None
    assert foo.rules.minimum_relro == "full"
    assert [a.patterns for a in foo.allow] == [("everywhere",), ("only_foo",), ("foo_table",)]
    assert len(foo.matched) == 2 and foo.matched[0].endswith("relro.yaml:12")

    # Matched by file name when there is no SONAME.
    by_file = policy.for_library(_lib_named(None, "/build/libfoo-2.so"))
    assert by_file.limits.relocations == 100 and by_file.rules.minimum_relro == "full"

    other = policy.for_library(_lib_named("libbar.so.1", "/build/libbar.so.1"))
    assert other.limits.relocations == 100 and other.limits.relocated_pages == 4
    assert other.regression.growth["relocations"] == Growth(percent=1)
    assert [a.patterns for a in other.allow] == [("everywhere",)]
    assert other.matched == ()


def _symbol(name: str, demangled: str | None = None, aliases: tuple[str, ...] = ()) -> Symbol:
    return Symbol(name=name, section=".data.rel.ro", address=0, size=8, type="OBJECT",
                  binding="GLOBAL", visibility="DEFAULT", relocations=1, by_class={},
                  targets={}, pages=1, span_pages=1, aliases=aliases, demangled=demangled)


def test_allowlist_globs_match_raw_aliases_and_demangled_names(tmp_path: Path) -> None:
    path = tmp_path / "relro.yaml"
    path.write_text("""\
allow:
  - symbol: "vtable for Plugin*"
    reason: plugin API
    limits: {relocations: 64}
  - symbol: ["legacy_*", "old_?able"]
""")
    lib_policy = load_policy(str(path)).for_library(_lib_named("libp.so", "/libp.so"))
    vtable = lib_policy.allowance_for(_symbol("_ZTV9PluginFoo", "vtable for PluginFoo"))
    assert vtable is not None and vtable.reason == "plugin API"
    assert vtable.limits.relocations == 64 and vtable.origin == f"{path}:2"
    # Without the demangled name (no enrichment), the raw name alone does not match.
    assert lib_policy.allowance_for(_symbol("_ZTV9PluginFoo")) is None
    assert lib_policy.allowance_for(_symbol("legacy_names")) is not None
    assert lib_policy.allowance_for(_symbol("x", aliases=("old_table",))) is not None
    assert lib_policy.allowance_for(_symbol("old_tables")) is None  # ? is one character
    assert lib_policy.allowance_for(_symbol("Legacy_names")) is None  # case-sensitive


def test_baseline_location_is_relative_to_the_policy_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "relro.yaml"
    path.write_text("baseline:\n  file: ../baselines/relro.json\n")
    assert load_policy(str(path)).baseline_file == str(tmp_path / "baselines" / "relro.json")


def test_a_fifo_or_a_folder_as_policy_or_baseline_is_refused_without_blocking(
        tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "policy.fifo"
    os.mkfifo(fifo)
    lib = build_gate_lib(tmp_path / "lib")
    for args, words in ((["--policy", str(fifo)], "not a regular file"),
                        (["--baseline-file", str(fifo)], "not a regular file"),
                        (["--policy", str(tmp_path)], "is a directory")):
        assert_one_error_line(run_cli("check", str(lib), *args), str(tmp_path), words)


def test_a_text_file_given_as_policy_is_named_in_a_short_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is a long paragraph of prose that somebody passed as the policy " * 20)
    lib = build_gate_lib(tmp_path / "lib")
    line = assert_one_error_line(run_cli("check", str(lib), "--policy", str(text)),
                                 f"{text}:1:1:", "is not of type 'object'")
    assert len(line) < len(str(text)) + 160
