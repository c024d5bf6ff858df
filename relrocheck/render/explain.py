"""`relrocheck explain`: one symbol's relocated words, as text or a JSON-ready dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from relrocheck.explain import RelocatedWord, Target
from relrocheck.model import Library, Symbol
from relrocheck.render.units import plural


def describe_target(t: Target, names: Mapping[str, str] = {}) -> str:
    """symbol+addend, the string in read-only data, or section+offset."""
    if t.symbol is not None:
        label = names.get(t.symbol, t.symbol)
        text = label + (f"{t.addend:+#x}" if t.addend else "")
        if t.external:
            text += " (defined in another library)"
    elif t.section is not None:
        text = f"{t.section}+{t.addend:#x}"
    elif t.address is not None:
        text = f"{t.address:#x}"
    else:
        text = "(thread-local offset)" if t.addend == 0 else f"(thread-local {t.addend:+#x})"
    if t.string is not None:
        text = f"{_quote(t.string)}  {text}"
    return text


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace(
        "\t", "\\t") + '"'


def render_text(lib: Library, symbol: Symbol, words: Sequence[RelocatedWord],
                names: Mapping[str, str] = {}) -> str:
    out: list[str] = []
    add = out.append
    label = symbol.demangled or symbol.name
    head = f"{lib.name}: {label}"
    if symbol.demangled and symbol.demangled != symbol.name:
        head += f" ({symbol.name})"
    add(head)
    where = (f"  in {symbol.section}" if symbol.unattributed else
             f"  {symbol.size} bytes at {symbol.address:#x} in {symbol.section}")
    pages = len({w.page for w in words})
    add(f"{where}: {plural(len(words), 'relocated word')} on {plural(pages, 'page')} "
        f"of {lib.page_size} bytes")
    if symbol.source:
        add(f"  source: {symbol.source}")
    if symbol.hint is not None:
        add(f"  hint ({symbol.hint.kind}): {symbol.hint.advice}")
    if not words:
        add("  no relocated words: the loader does not write this symbol")
        return "\n".join(out) + "\n"
    type_width = max(len(w.type) for w in words)
    offset_width = max(len("offset"), *(len(f"+{w.offset:#x}") for w in words))
    add("")
    add(f"  {'offset':<{offset_width}}  {'type':<{type_width}}  {'page':<12}  target")
    last_page = None
    for w in words:
        page = f"{w.page:#x}" if w.page != last_page else ""
        last_page = w.page
        add(f"  {'+' + format(w.offset, '#x'):<{offset_width}}  {w.type:<{type_width}}  "
            f"{page:<12}  {describe_target(w.target, names)}")
    return "\n".join(out) + "\n"


def to_dict(lib: Library, symbol: Symbol, words: Sequence[RelocatedWord],
            names: Mapping[str, str] = {}) -> dict[str, Any]:
    from relrocheck.serialize import symbol_to_dict

    return {
        "library": lib.path,
        "page_size": lib.page_size,
        "symbol": symbol_to_dict(symbol),
        "pages": sorted({w.page for w in words}),
        "words": [_word(w, names) for w in words],
    }


def _word(w: RelocatedWord, names: Mapping[str, str]) -> dict[str, Any]:
    t = w.target
    return {
        "address": w.address,
        "offset": w.offset,
        "page": w.page,
        "type": w.type,
        "class": w.cls,
        "table": w.table,
        "target": {
            "address": t.address,
            "symbol": t.symbol,
            "demangled": _demangled(t.symbol, names),
            "addend": t.addend,
            "section": t.section,
            "string": t.string,
            "external": t.external,
        },
    }


def _demangled(name: str | None, names: Mapping[str, str]) -> str | None:
    return names.get(name) if name is not None else None
