"""The policy: load a YAML file, validate it against the shipped JSON Schema, type it.

A policy says what `relrocheck check` enforces: absolute limits (defaults, and per library by
file name or SONAME glob), a symbol allowlist, regression rules against the baseline, and hard
rules (TEXTREL, RELRO). Every key is optional; no policy at all means the defaults below, so
`relrocheck check --baseline-file B LIB` works on its own.

Loading is defensive because a policy is input a build trusts blindly:
- the file is capped at `MAX_POLICY_BYTES` before YAML sees it;
- YAML is composed with a SafeLoader (no arbitrary tags) and aliases are refused outright: an
  alias is the vehicle of the "billion laughs" bomb and of `<<` merges, and a policy gains
  nothing from either (per-library entries already override defaults key by key);
- duplicate keys are errors (YAML silently keeps the last one, which could hide a limit);
- the schema forbids unknown keys, so a typo never switches a check off.
Errors are `FILE:LINE:COL: key.path: message`, found by composing the YAML node tree and
mapping each jsonschema error path back to the node it names.

yaml and jsonschema are imported only when a policy file is actually loaded.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from relrocheck.errors import PolicyError, RelrocheckError
from relrocheck.files import read_regular_file
from relrocheck.model import Library, Symbol
from relrocheck.record import field, record

MAX_POLICY_BYTES = 1 << 20
DEFAULT_BASELINE_FILE = "relro-baseline.json"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

RELRO_ORDER = ("none", "partial", "full")

# Library-level limits (each a key of baseline.TOTAL_METRICS), in report order.
TOTAL_LIMITS: tuple[str, ...] = (
    "writable_bytes", "relocations", "symbolic_relocations", "relocated_pages",
    "static_initializers",
)
SYMBOL_LIMITS: tuple[str, ...] = ("symbol_bytes", "symbol_relocations")

# Section kinds whose bytes the library's own code defines: a relocation there is a pointer
# somebody wrote into data. The other writable kinds belong to the toolchain: .got/.got.plt
# (one slot per import or own export, shaped by -z now, the compiler, visibility) and
# .dynamic (its size changes with the linker and its flags), so by default they do not fail a
# check by themselves; what they cost shows in relocated_pages.
USER_SECTION_KINDS: tuple[str, ...] = ("data", "relro", "init", "tls")

# Metrics the regression rules compare with the baseline, and their default allowed growth:
# 0 = no growth, None = not gated. The defaults gate memory, not toolchain noise:
# - relocated_pages: the private dirty pages every process pays;
# - data_relocations: relocations into user-owned writable data (USER_SECTION_KINDS), so a
#   table that grows within pages already dirty still fails;
# - static_initializers: code run at every load.
# relocations (all of them: also GOT/PLT slots of imports) and writable_bytes (also .dynamic,
# padding, pointer-free data an -O0 build keeps writable) are gated by a strict policy only;
# symbolic_relocations is a subset of relocations and load_dirty_pages a superset of
# relocated_pages; zero-fill bytes cost nothing until a program writes them.
DEFAULT_GROWTH: dict[str, int | None] = {
    "relocated_pages": 0,
    "load_dirty_pages": None,
    "relocations": None,
    "data_relocations": 0,
    "symbolic_relocations": None,
    "static_initializers": 0,
    "writable_bytes": None,
    "zero_fill_bytes": None,
}
REGRESSION_METRICS: tuple[str, ...] = tuple(DEFAULT_GROWTH)

# The policy's sections a `libraries` entry may override, key by key.
SETTINGS: tuple[str, ...] = ("limits", "regression", "rules")


# --- typed policy -------------------------------------------------------------------------


@record
class Growth:
    """Allowed growth of one metric: the larger of an absolute and a percent allowance."""

    absolute: int | None = None
    percent: float | None = None

    def allowance(self, old: int) -> int:
        allowed = self.absolute or 0
        if self.percent is not None:
            from fractions import Fraction

            # Exact, on the percent as written: float math makes 1.15% of 100000 1149, and
            # overflows (a traceback) for a percent beyond any float.
            allowed = max(allowed, math.floor(Fraction(self._percent_text()) * old / 100))
        return allowed

    def _percent_text(self) -> str:
        return str(self.percent).removesuffix(".0")  # also an int too large for a float

    def describe(self) -> str:
        parts = []
        if self.absolute is not None or self.percent is None:
            parts.append(f"+{self.absolute or 0}")
        if self.percent is not None:
            parts.append(f"+{self._percent_text()}%")
        return " or ".join(parts)


@record
class Limits:
    writable_bytes: int | None = None
    writable_bytes_by_kind: Mapping[str, int] = field(default_factory=dict)
    relocations: int | None = None
    symbolic_relocations: int | None = None
    relocated_pages: int | None = None
    static_initializers: int | None = None
    symbol_bytes: int | None = None
    symbol_relocations: int | None = None


@record
class SymbolLimits:
    bytes: int | None = None
    relocations: int | None = None


@record
class Rules:
    forbid_textrel: bool = True
    minimum_relro: str = "none"


@record
class Regression:
    growth: Mapping[str, Growth | None]  # metric -> allowed growth; None = not gated
    new_symbols: str = "fail"  # fail | allow
    tight: bool = False
    grown_symbols: str = "fail"  # fail | allow: a known symbol whose relocations grew


@record
class Allowance:
    """One allowlist entry: symbols matching it may be new and have their own limits.

    An entry matches a symbol when every criterion it gives matches (those it leaves out
    match anything): names, hint kinds, sections, source files.
    """

    patterns: tuple[str, ...]  # empty: any name
    reason: str | None = None
    limits: SymbolLimits = SymbolLimits()
    libraries: tuple[str, ...] = ()  # empty: every library
    origin: str = ""  # "policy.yaml:23", for messages
    hints: tuple[str, ...] = ()  # hint kinds (cxx_vtable, ...); empty: any
    sections: tuple[str, ...] = ()  # section globs; empty: any
    sources: tuple[str, ...] = ()  # source file globs (from DWARF); empty: any

    def matches(self, symbol: Symbol) -> bool:
        """Raw name, its aliases, or the demangled name (when the enrichment filled it); the
        hint kind, section and source file (without its line) when the entry asks for them."""
        if self.patterns:
            names: Iterable[str] = (symbol.name, *symbol.aliases,
                                    *((symbol.demangled,) if symbol.demangled else ()))
            if not _any_match(names, self.patterns):
                return False
        if self.hints and (symbol.hint is None or not _any_match((symbol.hint.kind,),
                                                                 self.hints)):
            return False
        if self.sections and not _any_match((symbol.section,), self.sections):
            return False
        if self.sources:
            if not symbol.source:
                return False
            file = symbol.source.rsplit(":", 1)[0]
            if not _any_match((file, os.path.basename(file)), self.sources):
                return False
        return True


@record
class LibraryPolicy:
    """The policy as it applies to one library: defaults with the matching entries merged."""

    limits: Limits
    regression: Regression
    rules: Rules
    allow: tuple[Allowance, ...]
    matched: tuple[str, ...] = ()  # origins of the `libraries` entries that matched

    def allowance_for(self, symbol: Symbol) -> Allowance | None:
        for a in self.allow:
            if a.matches(symbol):
                return a
        return None


@record
class _LibraryEntry:
    patterns: tuple[str, ...]
    settings: Mapping[str, Any]  # validated raw `limits`, `regression`, `rules`
    allow: tuple[Allowance, ...]
    origin: str


@record
class Policy:
    source: str | None  # the policy file as given, None for the built-in defaults
    baseline_file: str  # resolved against the policy's folder (or the current directory)
    baseline_missing: str  # fail | pass
    settings: Mapping[str, Any]  # validated raw top-level `limits`, `regression`, `rules`
    allow: tuple[Allowance, ...]
    libraries: tuple[_LibraryEntry, ...]

    def for_library(self, lib: Library) -> LibraryPolicy:
        names = library_match_names(lib)
        entries = [e for e in self.libraries if _any_match(names, e.patterns)]
        merged: dict[str, dict[str, Any]] = {k: dict(self.settings.get(k, {})) for k in SETTINGS}
        allow = [a for a in self.allow if not a.libraries or _any_match(names, a.libraries)]
        for entry in entries:
            for section, override in entry.settings.items():
                for key, value in override.items():
                    if key == "writable_bytes_by_kind":
                        # Per kind, so a library can raise one kind's limit and keep the rest.
                        value = {**merged[section].get(key, {}), **value}
                    merged[section][key] = value
            allow.extend(entry.allow)
        return LibraryPolicy(limits=_limits(merged["limits"]),
                             regression=_regression(merged["regression"]),
                             rules=Rules(**merged["rules"]), allow=tuple(allow),
                             matched=tuple(e.origin for e in entries))


def _any_match(names: Iterable[str], patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns)


def library_match_names(lib: Library) -> tuple[str, ...]:
    """What `libraries[].match` globs are tried on: the SONAME and the file name."""
    file_name = os.path.basename(lib.path)
    return (lib.soname, file_name) if lib.soname and lib.soname != file_name else (file_name,)


def _limits(raw: Mapping[str, Any]) -> Limits:
    by_kind = {k: v for k, v in (raw.get("writable_bytes_by_kind") or {}).items()
               if v is not None}
    return Limits(**{**raw, "writable_bytes_by_kind": by_kind})


def _growth(value: Any) -> Growth | None:
    if value is None:
        return None
    if isinstance(value, int):
        return Growth(absolute=value)
    return Growth(absolute=value.get("absolute"), percent=value.get("percent"))


def _regression(raw: Mapping[str, Any]) -> Regression:
    growth = {m: _growth(raw[m] if m in raw else DEFAULT_GROWTH[m]) for m in REGRESSION_METRICS}
    return Regression(growth=growth, new_symbols=raw.get("new_symbols", "fail"),
                      tight=raw.get("tight", False),
                      grown_symbols=raw.get("grown_symbols", "fail"))


def _globs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


_ALLOW_CRITERIA = ("symbol", "hint", "section", "source")


def _allowance(raw: Mapping[str, Any], origin: str) -> Allowance:
    return Allowance(patterns=_globs(raw.get("symbol")), reason=raw.get("reason"),
                     limits=SymbolLimits(**(raw.get("limits") or {})),
                     libraries=_globs(raw.get("libraries")), origin=origin,
                     hints=_globs(raw.get("hint")), sections=_globs(raw.get("section")),
                     sources=_globs(raw.get("source")))


def default_policy() -> Policy:
    """The built-in policy: no limits; no growth of relocated pages, of relocations into
    user-owned data or of static initializers; TEXTREL fails; baseline in the current dir."""
    return Policy(source=None, baseline_file=DEFAULT_BASELINE_FILE, baseline_missing="fail",
                  settings={}, allow=(), libraries=())


def policy_schema() -> dict[str, Any]:
    return json.loads(schema_text("policy"))


def schema_text(name: str) -> str:
    path = SCHEMA_DIR / f"{name}.schema.json"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RelrocheckError(f"schema {name!r} is not installed ({exc.strerror}: {path})"
                              ) from None


# --- loading ------------------------------------------------------------------------------


Position = tuple[int, int]  # 1-based line, column
KeyPath = tuple[Any, ...]  # mapping keys (str) and sequence indexes (int)


def format_key_path(path: KeyPath) -> str:
    if not path:
        return "(top level)"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Document:
    """The policy as plain Python values, with the position of every value and key."""

    def __init__(self, data: Any, values: dict[KeyPath, Position], keys: dict[KeyPath, Position]):
        self.data = data
        self.values = values
        self.keys = keys

    def position(self, path: KeyPath, key: bool = False) -> Position:
        table = self.keys if key else self.values
        while path not in table and path:
            path = path[:-1]
        return table.get(path, (1, 1))


def load_policy(path: str) -> Policy:
    """Read, validate and type the policy file at `path`; PolicyError on any problem."""
    try:
        raw = read_regular_file(path, MAX_POLICY_BYTES)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror or exc}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: policy file is larger than {MAX_POLICY_BYTES >> 20} MiB; "
                          "refusing to parse it")
    doc = _compose(path, raw)
    _validate(path, doc)
    return _build(path, doc)


def _fail(path: str, position: Position, key_path: KeyPath | None, message: str) -> PolicyError:
    where = f"{path}:{position[0]}:{position[1]}"
    return PolicyError(f"{where}: {message}" if key_path is None
                       else f"{where}: {format_key_path(key_path)}: {message}")


def _compose(path: str, raw: bytes) -> _Document:
    import yaml

    def mark(m: Any) -> Position:
        return (m.line + 1, m.column + 1)

    # libyaml composes a large policy (15,000 library entries) some 15 times faster than the
    # pure-Python parser; both give the same nodes and marks.
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def alias_error() -> PolicyError:
        """The first alias of the file, found again from its events (an error path only)."""
        for event in yaml.parse(text, Loader=loader_class):
            if isinstance(event, yaml.AliasEvent):
                return _fail(path, mark(event.start_mark), None,
                             f"YAML alias *{event.anchor} is not allowed in a policy (aliases "
                             "make alias bombs and hide what applies; write the value out)")
        return PolicyError(f"{path}: YAML aliases are not allowed in a policy")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not a YAML text file: {exc.reason} at offset {exc.start}"
                          ) from None
    loader: Any = None
    try:
        loader = loader_class(text)
        root = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        # Bytes that are not text (or control characters): str(exc) spans two lines.
        raise PolicyError(f"{path}: not a YAML text file: {exc.reason} at offset {exc.position}"
                          ) from None
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark or exc.context_mark
        problem = ": ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise _fail(path, mark(m) if m else (1, 1), None, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not a YAML file: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise PolicyError(f"{path}: YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()

    values: dict[KeyPath, Position] = {}
    keys: dict[KeyPath, Position] = {}
    map_tag, seq_tag = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"

    str_tag = "tag:yaml.org,2002:str"

    def scalar(node: Any, key_path: KeyPath) -> Any:
        if node.tag == str_tag:
            return node.value  # what construct_yaml_str returns, without its overhead
        try:
            value = loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise _fail(path, mark(node.start_mark), key_path,
                        str(getattr(exc, "problem", None) or exc)) from None
        except ValueError as exc:
            # The constructors call int() and datetime.date() on the text: `!!int x`,
            # `2020-13-45`, or more digits than Python converts (sys.get_int_max_str_digits).
            what = "not an integer, or too long" if node.tag.endswith(":int") else str(exc)
            raise _fail(path, mark(node.start_mark), key_path,
                        f"{node.value[:40]!r} is not a valid value: {what}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(path, mark(node.start_mark), key_path,
                        f"{node.value} is not a finite number")
        return value

    seen: set[int] = set()

    def convert(node: Any, key_path: KeyPath) -> Any:
        # An alias composes to the node it names, met a second time here: refused before it
        # is expanded, so an alias bomb costs no more than its own text.
        if id(node) in seen:
            raise alias_error()
        seen.add(id(node))
        values[key_path] = mark(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            if node.tag != map_tag:
                raise _fail(path, mark(node.start_mark), key_path, f"tag {node.tag} is not allowed")
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _fail(path, mark(key_node.start_mark), key_path,
                                "merge keys (<<) are not allowed in a policy")
                key = scalar(key_node, key_path) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    raise _fail(path, mark(key_node.start_mark), key_path,
                                f"keys must be strings, not {key_node.value!r}"
                                if isinstance(key_node, yaml.ScalarNode) else
                                "keys must be strings")
                if key in result:
                    raise _fail(path, mark(key_node.start_mark), key_path + (key,),
                                f"duplicate key (first at line {keys[key_path + (key,)][0]})")
                keys[key_path + (key,)] = mark(key_node.start_mark)
                result[key] = convert(value_node, key_path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            if node.tag != seq_tag:
                raise _fail(path, mark(node.start_mark), key_path, f"tag {node.tag} is not allowed")
            return [convert(item, key_path + (i,)) for i, item in enumerate(node.value)]
        return scalar(node, key_path)

    try:
        data = {} if root is None else convert(root, ())
    except RecursionError:
        raise PolicyError(f"{path}: YAML nested too deeply") from None
    return _Document(data, values, keys)


def _validate(path: str, doc: _Document) -> None:
    import difflib

    from relrocheck.schemacheck import quick_validator, strict_validator

    schema = policy_schema()
    quick = quick_validator(schema)
    if quick is not None and quick(doc.data):
        return

    validator = strict_validator(schema)  # 5.0 is no count: refused at its line and column
    found = []
    for error in validator.iter_errors(doc.data):
        key_path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = sorted(error.schema.get("properties", {}))
            for key in error.instance:
                if key in known:
                    continue
                unknown_path = key_path + (key,)
                close = difflib.get_close_matches(key, known, n=1)
                hint = (f"did you mean '{close[0]}'?" if close else
                        "known keys: " + ", ".join(known))
                found.append((doc.position(unknown_path, key=True), unknown_path,
                              f"unknown key ({hint})"))
            continue
        found.append((doc.position(key_path), key_path, _message(error)))
    if found:
        position, key_path, message = min(found, key=lambda f: (f[0], len(f[1]), f[2]))
        raise _fail(path, position, key_path, message)


_MAX_QUOTED = 60


def _message(error: Any) -> str:
    if error.validator == "const":
        return f"must be {error.validator_value!r}, not {error.instance!r}"
    if error.validator == "minProperties" and error.instance == {}:
        return "must not be empty"
    message = str(error.message)
    # jsonschema quotes the offending value whole: a text file given as policy would be
    # repeated in full on the one error line.
    shown = repr(error.instance)
    if len(shown) > _MAX_QUOTED:
        message = message.replace(shown, shown[:_MAX_QUOTED - 5] + " ...")
    return message


def _build(path: str, doc: _Document) -> Policy:
    data = doc.data

    def origin(key_path: KeyPath) -> str:
        return f"{path}:{doc.position(key_path)[0]}"

    baseline = data.get("baseline") or {}
    file = baseline.get("file", DEFAULT_BASELINE_FILE)
    if "\0" in file:  # JSON Schema cannot say it; open() would raise ValueError
        raise _fail(path, doc.position(("baseline", "file")), ("baseline", "file"),
                    "a file name cannot contain a NUL character")
    baseline_file = os.path.normpath(os.path.join(os.path.dirname(path), file))
    for where in [("allow", i) for i in range(len(data.get("allow", [])))] + [
            ("libraries", i, "allow", j) for i, e in enumerate(data.get("libraries", []))
            for j in range(len(e.get("allow", [])))]:
        entry: Any = data
        for part in where:
            entry = entry[part]
        if not any(k in entry for k in _ALLOW_CRITERIA):
            # An entry with a reason and no criterion would allow every symbol.
            raise _fail(path, doc.position(where), where, "an allowlist entry needs at least "
                        "one of symbol, hint, section, source")
    allow = tuple(_allowance(a, origin(("allow", i))) for i, a in enumerate(data.get("allow", [])))
    libraries = tuple(
        _LibraryEntry(
            patterns=_globs(e["match"]),
            settings={k: e[k] for k in SETTINGS if k in e},
            allow=tuple(_allowance(a, origin(("libraries", i, "allow", j)))
                        for j, a in enumerate(e.get("allow", []))),
            origin=origin(("libraries", i)))
        for i, e in enumerate(data.get("libraries", [])))
    return Policy(source=path, baseline_file=baseline_file,
                  baseline_missing=baseline.get("missing", "fail"),
                  settings={k: data[k] for k in SETTINGS if k in data},
                  allow=allow, libraries=libraries)
