"""A LibraryDiff as text, Markdown or a JSON-ready dict (bloat-o-meter style).

Text (rows sorted by impact, then the changed sections and totals):
    add/remove: 1/0 grow/shrink: 2/0 bytes up/down: +72/-0 (+72) relocs up/down: +6/-0 (+6) ...
       old bytes  new bytes     delta  old relocs new relocs   delta  section          symbol
               0         40       +40           0          5      +5  .data            extra_names
Markdown fits a pull-request comment or a CI job summary: one summary line, one table of the
symbols, sections and totals folded in a <details> block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relrocheck.diff import Change, LibraryDiff
from relrocheck.model import labelled
from relrocheck.text import printable

DEFAULT_TOP = 20


def signed(n: int) -> str:
    return f"+{n}" if n > 0 else (f"-{-n}" if n < 0 else "0")


def summary_line(d: LibraryDiff, arrow: str = "->") -> str:
    pages = d.total("relocated_pages")
    bytes_net = d.bytes_up + d.bytes_down
    relocs_net = d.relocations_up + d.relocations_down
    return (f"add/remove: {d.count('added')}/{d.count('removed')} "
            f"grow/shrink: {d.count('grown')}/{d.count('shrunk')} "
            f"bytes up/down: +{d.bytes_up}/-{-d.bytes_down} ({signed(bytes_net)}) "
            f"relocs up/down: +{d.relocations_up}/-{-d.relocations_down} ({signed(relocs_net)}) "
            f"relocated pages: {pages.old} {arrow} {pages.new}")


def label(name: str, labels: Mapping[str, str]) -> str:
    """A symbol's raw name, with its demangled name when it has one (printable: a baseline
    or JSON report may name anything)."""
    return printable(labelled(name, labels.get(name)))


def section_label(c: Change, arrow: str = "->") -> str:
    return printable(f"{c.old_section}{arrow}{c.section}" if c.moved else c.section)


def _text_row(c: Change, name: str) -> str:
    return (f"  {c.old_bytes:>10} {c.new_bytes:>10} {signed(c.bytes_delta):>9}"
            f"  {c.old_relocations:>10} {c.new_relocations:>10} {signed(c.relocations_delta):>7}"
            f"  {section_label(c):<16} {name}")


def render_text(d: LibraryDiff, labels: Mapping[str, str] | None = None,
                top: int | None = DEFAULT_TOP, indent: str = "  ") -> str:
    labels = labels or {}
    out = [summary_line(d)]
    if d.old_relro != d.new_relro and d.old_present:
        out.append(f"RELRO: {d.old_relro} -> {d.new_relro}")
    if d.old_textrel != d.new_textrel and d.old_present:
        out.append(f"TEXTREL: {'yes' if d.old_textrel else 'no'} -> "
                   f"{'yes' if d.new_textrel else 'no'}")
    out.extend(slot_lines(d))
    head = (f"  {'old bytes':>10} {'new bytes':>10} {'delta':>9}  {'old relocs':>10} "
            f"{'new relocs':>10} {'delta':>7}  {'section':<16} ")
    if d.symbols:
        out.append(head + "symbol")
        shown = d.symbols if top is None else d.symbols[:top]
        out.extend(_text_row(c, label(c.name, labels)) for c in shown)
        if len(shown) < len(d.symbols):
            out.append(f"  ... {len(d.symbols) - len(shown)} more changed symbols (--top 0 "
                       "shows all)")
    else:
        out.append("no symbol changed")
    if d.sections:
        out.append(head.replace("section ", "kind    ") + "section")
        out.extend(_text_row(c, c.name) for c in d.sections)
    changed = [t for t in d.totals if t.delta]
    if changed:
        out.append("totals: " + ", ".join(f"{t.metric} {t.old} -> {t.new} ({signed(t.delta)})"
                                          for t in changed))
    return "".join(f"{indent}{line}\n" for line in out)


def slot_lines(d: LibraryDiff) -> list[str]:
    """"new import: getenv (external, .got.plt, 8 B)": why a GOT/PLT count moved."""
    lines = []
    for verb, rows in (("new", d.slots_added), ("removed", d.slots_removed)):
        for name, kind, section, size in rows:
            what = "import" if kind == "external" else "own-export slot"
            lines.append(f"{verb} {what}: {name} ({kind}, {section}, {size} B)")
    return lines


_MD_SPECIAL = str.maketrans({**{c: "\\" + c for c in "\\`*_[]|#"}, "<": "&lt;", ">": "&gt;"})


def md_escape(text: str) -> str:
    """Plain text for Markdown: symbol names (`_ZTV...`, `operator|`, `vector<int>`) stay
    literal instead of turning into emphasis, table cells or HTML tags."""
    return text.translate(_MD_SPECIAL)


def md_code(text: str) -> str:
    """A code span; only the table separator needs escaping inside one."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    body = printable(text).replace("|", "\\|")
    return f"{fence}{pad}{body}{pad}{fence}"


def _md_row(c: Change, name: str) -> str:
    return (f"| {name} | {md_code(section_label(c, ' → '))} | {c.old_bytes} → {c.new_bytes} | "
            f"{signed(c.bytes_delta)} | {c.old_relocations} → {c.new_relocations} | "
            f"{signed(c.relocations_delta)} |")


def render_markdown(d: LibraryDiff, labels: Mapping[str, str] | None = None,
                    top: int | None = DEFAULT_TOP) -> str:
    labels = labels or {}
    pages = d.total("relocated_pages")
    out = [(f"**add/remove** {d.count('added')}/{d.count('removed')} · "
           f"**grow/shrink** {d.count('grown')}/{d.count('shrunk')} · "
           f"**bytes** +{d.bytes_up}/−{-d.bytes_down} ({signed(d.bytes_up + d.bytes_down)}) · "
           f"**relocations** +{d.relocations_up}/−{-d.relocations_down} "
           f"({signed(d.relocations_up + d.relocations_down)}) · "
           f"**relocated pages** {pages.old} → {pages.new}"), ""]
    slots = slot_lines(d)
    if slots:
        out += [f"- {md_escape(line)}" for line in slots] + [""]
    if d.symbols:
        out += ["| symbol | section | bytes | Δ bytes | relocations | Δ relocations |",
                "|:--|:--|--:|--:|--:|--:|"]
        shown = d.symbols if top is None else d.symbols[:top]
        for c in shown:
            demangled = labels.get(c.name)
            name = md_code(c.name) + (f" ({md_code(demangled)})"
                                       if demangled and demangled != c.name else "")
            out.append(_md_row(c, name))
        if len(shown) < len(d.symbols):
            out.append(f"| … {len(d.symbols) - len(shown)} more | | | | | |")
        out.append("")
    changed = [t for t in d.totals if t.delta]
    if d.sections or changed:
        out += ["<details><summary>Sections and totals</summary>", ""]
        if d.sections:
            out += ["| section | kind | bytes | Δ bytes | relocations | Δ relocations |",
                    "|:--|:--|--:|--:|--:|--:|"]
            out.extend(_md_row(c, md_code(c.name)) for c in d.sections)
            out.append("")
        if changed:
            out += ["| total | old | new | Δ |", "|:--|--:|--:|--:|"]
            out.extend(f"| {t.metric} | {t.old} | {t.new} | {signed(t.delta)} |" for t in changed)
            out.append("")
        out += ["</details>", ""]
    return "\n".join(out)


def change_to_dict(c: Change, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.name, "section": c.section, "old_section": c.old_section or None,
        "status": c.status,
        "old_bytes": c.old_bytes, "new_bytes": c.new_bytes, "bytes_delta": c.bytes_delta,
        "old_relocations": c.old_relocations, "new_relocations": c.new_relocations,
        "relocations_delta": c.relocations_delta,
    }
    if labels and c.name in labels:
        out["demangled"] = labels[c.name]
    return out


def diff_to_dict(d: LibraryDiff, labels: Mapping[str, str] | None = None,
                 top: int | None = None) -> dict[str, Any]:
    symbols = d.symbols if top is None else d.symbols[:top]
    return {
        "name": d.name,
        "old_present": d.old_present,
        "got_slots": {
            "added": [{"symbol": n, "kind": k, "section": sec, "bytes": b}
                      for n, k, sec, b in d.slots_added],
            "removed": [{"symbol": n, "kind": k, "section": sec, "bytes": b}
                        for n, k, sec, b in d.slots_removed]},
        "summary": {
            "added": d.count("added"), "removed": d.count("removed"),
            "grown": d.count("grown"), "shrunk": d.count("shrunk"),
            "bytes_up": d.bytes_up, "bytes_down": d.bytes_down,
            "relocations_up": d.relocations_up, "relocations_down": d.relocations_down,
        },
        "totals": {t.metric: {"old": t.old, "new": t.new, "delta": t.delta} for t in d.totals},
        "relro": {"old": d.old_relro, "new": d.new_relro},
        "textrel": {"old": d.old_textrel, "new": d.new_textrel},
        "sections": [change_to_dict(c) for c in d.sections],
        "symbols_changed": len(d.symbols),
        "symbols": [change_to_dict(c, labels) for c in symbols],
    }
