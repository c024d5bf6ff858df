"""The judgement: one library against its policy and its baseline entry, as a list of findings.

Pure: no files, no printing. `judge` returns every violation, in the order a reader should
fix them (hard rules, limits, regressions, new symbols, baseline state).

What counts as a *new symbol* (the rule "a new symbol in writable data fails unless
allowlisted"): a named symbol of the library that has at least one dynamic relocation and
whose raw name (nor any alias) is not in the baseline entry. Relocations are the criterion
because they are what the loader writes, in every process, before any code runs:
- a new pointer-free `.data` symbol costs file-backed bytes only, which the `writable_bytes`
  regression rule already gates; a new `.bss` symbol costs nothing until a program writes it;
- `<unattributed in .X>` buckets are not symbols: they are the remainder of a section (GOT
  slots, tables of a stripped library); their growth shows in the totals and in the diff;
- a symbol that existed without relocations and now has some is not new, but it grows the
  relocation total, which the regression rules gate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from relrocheck.baseline import Entry, entry_from_library, stable_name
from relrocheck.baseline import metric as metric_value
from relrocheck.diff import LibraryDiff, demangled_labels, diff_entries
from relrocheck.model import Hint, Library, Symbol, labelled
from relrocheck.policy import RELRO_ORDER, TOTAL_LIMITS, USER_SECTION_KINDS, LibraryPolicy
from relrocheck.record import field, record

# Violation kinds, in the order they are reported.
VIOLATION_KINDS: tuple[str, ...] = (
    "rule",  # a hard rule: TEXTREL, RELRO
    "limit",  # an absolute limit of the library or of one symbol
    "regression",  # growth over the baseline beyond what the policy allows
    "new_symbol",  # a relocated symbol the baseline does not know and the allowlist does not allow
    "stale_baseline",  # a shrink, when the policy asks for a tight baseline
    "missing_baseline",  # no entry to compare with, and the policy says that fails
)

# Symbol sections whose bytes are anonymous zero-fill: no cost until written, so the
# per-symbol byte limit does not apply to them.
_ZERO_FILL_KINDS = ("bss", "tbss")


@record
class Violation:
    kind: str  # one of VIOLATION_KINDS
    metric: str  # textrel, relro, a limit or regression metric, "symbol", "baseline"
    message: str
    symbol: str | None = None
    old: int | None = None
    new: int | None = None
    limit: int | None = None  # the bound that was exceeded (old + allowance for growth)


def _rules(lib: Library, policy: LibraryPolicy) -> list[Violation]:
    out = []
    if policy.rules.forbid_textrel and lib.textrel:
        where = ", ".join(lib.textrel_sections) or "code (DT_TEXTREL is set)"
        out.append(Violation("rule", "textrel",
                             f"TEXTREL: the loader writes relocations into {where}, dirtying "
                             "code pages in every process (rebuild every object with -fPIC)"))
    wanted = policy.rules.minimum_relro
    if RELRO_ORDER.index(lib.relro) < RELRO_ORDER.index(wanted):
        fix = "-Wl,-z,relro,-z,now" if wanted == "full" else "-Wl,-z,relro"
        out.append(Violation("rule", "relro", f"RELRO is {lib.relro}, the policy requires "
                             f"{wanted} (link with {fix})"))
    return out


def _limits(lib: Library, current: Entry, policy: LibraryPolicy) -> list[Violation]:
    out = []
    limits = policy.limits
    totals = current.totals
    for metric in TOTAL_LIMITS:
        bound = getattr(limits, metric)
        if bound is not None and totals[metric] > bound:
            out.append(Violation("limit", metric, f"{metric} {totals[metric]} exceeds the limit "
                                 f"{bound}", new=totals[metric], limit=bound))
    by_kind = current.bytes_by_kind()
    for kind, bound in limits.writable_bytes_by_kind.items():
        value = by_kind.get(kind, 0)
        if value > bound:
            out.append(Violation("limit", f"writable_bytes_by_kind.{kind}",
                                 f"writable bytes of kind {kind} {value} exceed the limit {bound}",
                                 new=value, limit=bound))
    kind_of = {s.name: s.kind for s in lib.sections}
    for sym in lib.symbols:
        if sym.unattributed:
            continue  # a section's remainder: the totals gate it
        allowance = policy.allowance_for(sym)
        if allowance is not None:
            max_bytes, max_relocs = allowance.limits.bytes, allowance.limits.relocations
            source = f" (its allowlist entry at {allowance.origin})"
        else:
            max_bytes, max_relocs = limits.symbol_bytes, limits.symbol_relocations
            source = ""
        if (max_bytes is not None and sym.size > max_bytes
                and kind_of.get(sym.section) not in _ZERO_FILL_KINDS):
            out.append(Violation("limit", "symbol_bytes",
                                 f"{_label(sym)} has {sym.size} bytes in {sym.section}, more than "
                                 f"the per-symbol limit {max_bytes}{source}",
                                 symbol=sym.name, new=sym.size, limit=max_bytes))
        if max_relocs is not None and sym.relocations > max_relocs:
            out.append(Violation("limit", "symbol_relocations",
                                 f"{_label(sym)} has {sym.relocations} relocations, more than the "
                                 f"per-symbol limit {max_relocs}{source}",
                                 symbol=sym.name, new=sym.relocations, limit=max_relocs))
    return out


def _regressions(lib: Library, current: Entry, old: Entry, policy: LibraryPolicy
                 ) -> list[Violation]:
    out = []
    regression = policy.regression
    # Relocations of allowlisted symbols are accepted in the user-data total too: otherwise
    # allowlisting a table would still fail the check through data_relocations.
    allowlisted = {stable_name(s) for s in lib.symbols
               if not s.unattributed and s.relocations and policy.allowance_for(s) is not None}
    for metric, growth in regression.growth.items():
        if growth is None:
            continue
        before, after = metric_value(old, metric), metric_value(current, metric)
        if metric == "data_relocations" and allowlisted:
            before -= _user_relocations_of(old, allowlisted)
            after -= _user_relocations_of(current, allowlisted)
        allowed = growth.allowance(before)
        if after - before > allowed:
            out.append(Violation("regression", metric,
                                 f"{metric} grew {before} -> {after} (+{after - before}); the "
                                 f"policy allows {growth.describe()}",
                                 old=before, new=after, limit=before + allowed))
        elif regression.tight and after < before:
            out.append(Violation("stale_baseline", metric,
                                 f"{metric} shrank {before} -> {after}; the policy asks for a "
                                 "tight baseline: accept the improvement with "
                                 "--baseline update", old=before, new=after))
    kind_of = {s.name: s.kind for s in lib.sections}
    grown_reported: set[str] = set()
    for sym in lib.symbols:
        if sym.unattributed or not sym.relocations:
            continue
        if kind_of.get(sym.section) not in USER_SECTION_KINDS:
            continue  # GOT and .dynamic belong to the toolchain; relocated_pages gates them
        key = stable_name(sym)
        known = key in old.symbols or any(a in old.symbols for a in sym.aliases)
        allowance = policy.allowance_for(sym)
        if not known and regression.new_symbols == "fail" and allowance is None:
            out.append(Violation("new_symbol", "symbol",
                                 f"new symbol in writable data: {_label(sym)} ({sym.section}, "
                                 f"{sym.size} bytes, {sym.relocations} relocations) is not in the "
                                 f"baseline and not allowlisted{_allow_note(policy)}",
                                 symbol=sym.name, old=0, new=sym.relocations))
        elif (known and key in old.symbols and key not in grown_reported
              and regression.grown_symbols == "fail" and allowance is None):
            before, after = old.symbols[key].relocations, current.symbols[key].relocations
            if after > before:
                grown_reported.add(key)
                out.append(Violation("regression", "symbol_relocations",
                                     f"{_label(sym)} ({sym.section}) grew {before} -> {after} "
                                     f"relocations (+{after - before}), each written at load"
                                     f"{_allow_note(policy)}", symbol=sym.name, old=before,
                                     new=after, limit=before))
    return out  # judge() orders them by kind: the shrinks after the new symbols


def _user_relocations_of(entry: Entry, keys: set[str]) -> int:
    total = 0
    for key in keys:
        row = entry.symbols.get(key)
        if row is None:
            continue
        section = entry.sections.get(row.section.split(",")[0])
        if section is not None and section.kind in USER_SECTION_KINDS:
            total += row.relocations
    return total


def _allow_note(policy: LibraryPolicy) -> str:
    """Failures about one symbol offer the allowlist as the alternative to accepting."""
    return " (or allowlist it: `allow:` in the policy, by symbol, hint kind, section or source)"


def judge(lib: Library, policy: LibraryPolicy, old: Entry | None,
          missing_baseline: str = "fail", current: Entry | None = None) -> list[Violation]:
    """Everything wrong with `lib` under `policy`, compared with its baseline entry `old`.

    `missing_baseline` (fail | pass) decides what a missing entry means. `current` is
    `entry_from_library(lib)` when the caller has it already.
    """
    if current is None:
        current = entry_from_library(lib)
    found = _rules(lib, policy) + _limits(lib, current, policy)
    if old is not None:
        found += _regressions(lib, current, old, policy)
    elif missing_baseline == "fail":
        found.append(Violation("missing_baseline", "baseline",
                               f"no baseline entry for {lib.name}: nothing to compare with"))
    order = {k: i for i, k in enumerate(VIOLATION_KINDS)}
    return sorted(found, key=lambda v: order[v.kind])


def _label(sym: Symbol) -> str:
    return labelled(sym.name, sym.demangled)


# --- one run of the gate: every library's findings, ready to render ------------------------

MAX_HINTS = 5


@record
class Outcome:
    """One library's verdict, with the diff against its baseline entry and fixes to offer."""

    name: str
    path: str
    violations: tuple[Violation, ...]
    diff: LibraryDiff | None  # None when the baseline has no entry for this library
    hints: tuple[tuple[str, Hint], ...] = ()  # (symbol, hint) for the worst rows
    labels: Mapping[str, str] = field(default_factory=dict)  # raw name -> demangled
    notes: tuple[str, ...] = ()  # one line each: what the reader should know (a SONAME bump)

    @property
    def failed(self) -> bool:
        return bool(self.violations)


@record
class GateRun:
    mode: str  # check | update
    baseline_file: str
    outcomes: tuple[Outcome, ...]
    accept_command: str  # the exact command that records the current numbers

    @property
    def failed(self) -> bool:
        return any(o.failed for o in self.outcomes)


def evaluate(lib: Library, policy: LibraryPolicy, old: Entry | None,
             missing_baseline: str = "fail", regressions: bool = True,
             notes: tuple[str, ...] = ()) -> Outcome:
    """Judge `lib`, diff it against `old`, and pick the fix hints worth showing first.

    With `regressions=False` (what `--baseline update` records) only hard rules and limits
    are judged: the baseline accepts growth, never a broken rule or limit.
    """
    current = entry_from_library(lib)
    if regressions:
        violations = judge(lib, policy, old, missing_baseline, current)
    else:
        violations = judge(lib, policy, None, "pass", current)
    diff = diff_entries(lib.name, old, current) if old is not None else None
    by_name = {s.name: s for s in lib.symbols}  # buckets too: a grown GOT has a fix
    worst = [v.symbol for v in violations if v.symbol]
    if diff is not None and violations:
        # Only rows of user-owned data: a GOT that grew by a new import has no fix to offer
        # (its hint speaks of own exports, which did not change).
        user = {s.name for s in lib.sections if s.kind in USER_SECTION_KINDS}
        worst += [c.name for c in diff.symbols
                  if c.status in ("added", "grown") and c.section in user]
    hints: list[tuple[str, Hint]] = []
    for name in dict.fromkeys(worst):
        sym = by_name.get(name)
        if sym is not None and sym.hint is not None and len(hints) < MAX_HINTS:
            hints.append((name, sym.hint))
    return Outcome(name=lib.name, path=lib.path, violations=tuple(violations), diff=diff,
                   hints=tuple(hints), labels=demangled_labels(lib.symbols), notes=notes)


_SO_VERSION = re.compile(r"\.so(?:\.\d+)+$")


def previous_soname(name: str, stored: Mapping[str, Entry], taken: set[str]) -> str | None:
    """The entry a library whose SONAME was bumped (libfoo.so.1 -> libfoo.so.2) descends
    from: the one stored entry of the same name with another version, not checked itself."""
    stem = _SO_VERSION.sub("", name)
    if stem == name or name in stored:
        return None
    candidates = [k for k in stored if k != name and k not in taken
                  and _SO_VERSION.search(k) and _SO_VERSION.sub("", k) == stem]
    return candidates[0] if len(candidates) == 1 else None
