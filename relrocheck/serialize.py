"""Library <-> JSON-ready dicts, the one place the report's JSON shape is defined.

The shape is described by `schemas/report.schema.json`; `library_from_dict` reads a report
back so that `diff` can compare saved JSON reports without the ELF files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii as _json_string  # the C encoder's own
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from relrocheck import __version__
from relrocheck.errors import RelrocheckError
from relrocheck.model import (
    Cluster,
    Hint,
    Library,
    Pages,
    RelocationSummary,
    Section,
    Segment,
    Symbol,
)
from relrocheck.native import kernels
from relrocheck.record import fields

if TYPE_CHECKING:
    from collections import Counter

REPORT_FORMAT_VERSION = 1


def symbol_to_dict(s: Symbol) -> dict[str, Any]:
    # A copy of the instance's fields (C-level; a large library has tens of thousands of
    # symbols): tuples serialize as JSON arrays, only the hint needs converting.
    d = dict(vars(s))
    del d["page_addresses"]  # the library's relocated_addresses list the pages once
    if s.clusters:
        d["clusters"] = [dict(vars(c)) for c in s.clusters]
    else:
        d["clusters"] = []
    if s.hint is not None:
        d["hint"] = {"kind": s.hint.kind, "advice": s.hint.advice}
    return d


def _pages_to_dict(p: Pages) -> dict[str, Any]:
    return {
        "page_size": p.page_size,
        "relocated": p.relocated,
        "writable_file_backed": p.writable_file_backed,
        "data_bss_shared": p.data_bss_shared,
        "load_dirty": p.load_dirty,
        "relocated_addresses": list(p.relocated_addresses),
        "zero_filled_addresses": list(p.zero_filled_addresses),
    }


def _pages_from_dict(pages: Mapping[str, Any]) -> Pages:
    return Pages(
        page_size=pages["page_size"], relocated=pages["relocated"],
        writable_file_backed=pages["writable_file_backed"],
        data_bss_shared=pages["data_bss_shared"], load_dirty=pages["load_dirty"],
        relocated_addresses=tuple(pages.get("relocated_addresses", ())),
        zero_filled_addresses=tuple(pages.get("zero_filled_addresses", ())))


def plan_to_dict(lib: Library, owners: Counter[int] | None = None) -> dict[str, Any]:
    """The fix plan and the flag what-ifs of a library (relrocheck.plan). owners:
    group.page_owners(lib), when the caller has it already."""
    from relrocheck.plan import fix_plan, what_ifs

    plan = fix_plan(lib, owners=owners)
    return {
        "fix_plan": {
            "steps": [{"symbol": step.symbol, "label": step.label, "hint_kind": step.hint_kind,
                       "pages_freed": step.pages_freed, "total_freed": step.total_freed,
                       "members": list(step.members)}
                      for step in plan.steps],
            "freed_pages": plan.freed_pages,
            "freed_bytes": plan.freed_pages * plan.page_size,
            "relocated_pages": plan.relocated_pages,
            "summary": plan.summary(),
        },
        "what_ifs": [{"flag": w.flag, "bound": w.bound, "plt_removed": w.plt_removed,
                      "relocations_removed_at_least": w.relocations_removed_at_least,
                      "table_shrink_bytes": w.table_shrink_bytes, "pages_stay": w.pages_stay,
                      "advice": w.advice}
                     for w in what_ifs(lib)],
    }


def groups_to_list(lib: Library, group_by: str, owners: Counter[int] | None = None
                   ) -> list[dict[str, Any]]:
    from relrocheck.group import group_by as grouped

    return [{"label": g.label, "hint_kind": g.hint_kind, "count": g.count,
             "relocations": g.relocations, "size": g.size, "pages": g.pages,
             "pages_exclusive": g.pages_exclusive, "members": [m.name for m in g.members]}
            for g in grouped(lib, group_by, owners)]


def library_to_dict(lib: Library, top: int | None = None, group_by: str | None = None
                    ) -> dict[str, Any]:
    from relrocheck.group import page_owners

    symbols = lib.symbols if top is None else lib.symbols[:top]
    owners = page_owners(lib)  # for the plan and the groups
    extra = ({"group_by": group_by, "groups": groups_to_list(lib, group_by, owners)}
             if group_by else {})
    return {
        "path": lib.path,
        "name": lib.name,
        "soname": lib.soname,
        "file_type": lib.file_type,
        "pie": lib.pie,
        "machine": lib.machine,
        "elf_class": lib.elf_class,
        "endian": lib.endian,
        "word_size": lib.word_size,
        "page_size": lib.page_size,
        "max_page_size": lib.max_page_size,
        "file_size": lib.file_size,
        "build_id": lib.build_id,
        "relro": lib.relro,
        "relro_range": None if lib.relro_range is None else
        {"start": lib.relro_range[0], "end": lib.relro_range[1]},
        "bind_now": lib.bind_now,
        "textrel": lib.textrel,
        "textrel_sections": list(lib.textrel_sections),
        "static_initializers": lib.static_initializers,
        "init_array_entries": lib.init_array_entries,
        "has_dt_init": lib.has_dt_init,
        "writable_bytes": lib.writable_bytes,
        "zero_fill_bytes": lib.zero_fill_bytes,
        "bytes_by_kind": lib.bytes_by_kind(),
        "sections": [
            {"name": s.name, "type": s.type, "kind": s.kind, "address": s.address, "size": s.size,
             "file_backed": s.file_backed, "writable": s.writable, "in_relro": s.in_relro,
             "relocations": s.relocations}
            for s in lib.sections
        ],
        "segments": [
            {"address": g.address, "file_size": g.file_size, "memory_size": g.memory_size,
             "align": g.align, "file_pages": g.file_pages, "relocated_pages": g.relocated_pages}
            for g in lib.segments
        ],
        "relocations": {
            "total": lib.relocations.total,
            "by_type": dict(lib.relocations.by_type),
            "by_class": dict(lib.relocations.by_class),
            "by_table": dict(lib.relocations.by_table),
            "by_section": dict(lib.relocations.by_section),
            "encodings": dict(lib.relocations.encodings),
            "no_ops": lib.relocations.no_ops,
            "notes": list(lib.relocations.notes),
        },
        "pages": _pages_to_dict(lib.pages),
        "pages_by_size": [_pages_to_dict(p) for p in lib.pages_by_size],
        "symbol_table": lib.symbol_table,
        "symbols_from": lib.symbols_from,
        "has_debug_info": lib.has_debug_info,
        "own_export_relocations": {cls: dict(types)
                                   for cls, types in lib.own_export_relocations.items()},
        "initializers": dict(lib.initializers),
        **plan_to_dict(lib, owners),
        **extra,
        "symbols_total": len(lib.symbols),
        "symbols": [symbol_to_dict(s) for s in symbols],
    }


def report_document(libraries: list[Library], errors: list[tuple[str, str]],
                    top: int | None = None) -> dict[str, Any]:
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "tool": {"name": "relrocheck", "version": __version__},
        "libraries": [library_to_dict(lib, top) for lib in libraries],
        "errors": [{"path": path, "message": message} for path, message in errors],
    }


def report_json_chunks(libraries: list[Library], errors: list[tuple[str, str]],
                       top: int | None = None, batch: int = 2000,
                       group_by: str | None = None) -> Iterator[str]:
    """The compact JSON text of `report_document`, in pieces.

    A large library's symbols are encoded a batch at a time, so the whole document never
    sits in memory twice (as dicts and as text) next to the measured library.
    """
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    # The document's own key order: its "libraries" list is opened, filled, then closed.
    head = dumps(report_document([], []))
    assert head.endswith('"libraries":[],"errors":[]}')
    yield head[:-len('],"errors":[]}')]
    for n, lib in enumerate(libraries):
        # "symbols" is the entry's last key: its empty list is opened and then filled.
        entry = dumps(library_to_dict(lib, top=0, group_by=group_by))
        assert entry.endswith('"symbols":[]}')
        symbols = lib.symbols if top is None else lib.symbols[:top]
        yield ("," if n else "") + entry[:-2]
        encoder = symbol_encoder(dumps)  # one for all batches: they share hints, sections...
        for start in range(0, len(symbols), batch):
            yield ("," if start else "") + symbols_json(symbols[start:start + batch], dumps,
                                                          encoder)
        yield "]}"
    yield '],"errors":' + dumps(report_document([], errors)["errors"]) + "}"


# -- the symbols' JSON, without a dict per symbol -----------------------------------------------
#
# A large library's report is mostly its symbols (libLLVM-15: 6,118 of them, 5.4 MB). Through
# symbol_to_dict and the C encoder each one costs a dict of 20 keys, every key encoded again,
# and its hint's advice escaped again (2.3 MB of libLLVM's report are the same 33 advices).
# symbols_json writes the same text from a template: the keys are literals, strings go through
# the C encoder's own string function (encode_basestring_ascii), ints through str(), and what
# symbols share is encoded once. tests/test_serialize.py holds it byte for byte to the generic
# encoding.

# A symbol's instance dict holds its fields in the record's field order (its __init__, replace()
# and model.symbol_from_fields all set every field, in order): symbol_to_dict's key order,
# which the template below follows.
_SYMBOL_FIELDS = tuple(f.name for f in fields(Symbol))
_symbol_values = itemgetter(*_SYMBOL_FIELDS)


def symbols_json(symbols: Sequence[Symbol], dumps: Callable[[Any], str],
                 encoder: SymbolEncoder | None = None) -> str:
    """The symbols as compact JSON objects, comma-separated: the text that
    `dumps([symbol_to_dict(s) for s in symbols])` has between its brackets.

    dumps: a compact encoder (separators "," and ":", ensure_ascii) for what the template
      leaves to it. encoder: a `symbol_encoder(dumps)`, kept by a caller that encodes one
      library's symbols in several batches (it remembers what they share). The compiled
      kernel (kernels/) writes the same template; the encoder's `encode` is
      its twin.
    """
    if not symbols:
        return ""
    if tuple(vars(symbols[0])) != _SYMBOL_FIELDS:
        # Not built like the model's symbols: let symbol_to_dict say what the fields are.
        return dumps([symbol_to_dict(s) for s in symbols])[1:-1]
    encoder = encoder or symbol_encoder(dumps)
    if kernels is not None:
        return kernels.symbols_json(symbols, _SYMBOL_FIELDS, _json_string,  # type: ignore[no-any-return]
                                    encoder.hint_text, encoder.clusters_text)
    return ",".join(map(encoder.encode, symbols))


class SymbolEncoder:
    """One symbol's JSON text (`encode`), and the texts of what symbols share, cached."""

    def __init__(self, encode: Callable[[Symbol], str], hint_text: Callable[[Hint], str],
                 clusters_text: Callable[[tuple[Cluster, ...]], str]) -> None:
        self.encode = encode
        self.hint_text = hint_text
        self.clusters_text = clusters_text


def symbol_encoder(dumps: Callable[[Any], str]) -> SymbolEncoder:
    """What gives one symbol's JSON text, for the symbols of one library.

    What the symbols share is encoded the first time it is met and then looked up: hints (by
    identity: one library's hints are a few shared objects, alive as long as it is), the
    "by_class" and "targets" dicts (a few hundred distinct ones), section names, and symbol
    type, binding and visibility (a dozen combinations).
    """
    string = _json_string
    hints: dict[int, str] = {id(None): "null"}
    counts: dict[tuple, str] = {}
    sections: dict[str, str] = {}
    kinds: dict[tuple[str, str, str], str] = {}

    def new_hint(hint: Hint) -> str:
        text = hints[id(hint)] = (f'{{"kind":{string(hint.kind)},'
                                  f'"advice":{string(hint.advice)}}}')
        return text

    def new_counts(key: tuple, by_class: Mapping[str, int], targets: Mapping[str, int]) -> str:
        text = counts[key] = f'"by_class":{dumps(by_class)},"targets":{dumps(targets)}'
        return text

    def new_section(name: str) -> str:
        text = sections[name] = string(name)
        return text

    def new_kind(key: tuple[str, str, str]) -> str:
        type_, binding, visibility = key
        text = kinds[key] = (f'"type":{string(type_)},"binding":{string(binding)},'
                             f'"visibility":{string(visibility)}')
        return text

    def hint_text(hint: Hint) -> str:
        return hints.get(id(hint)) or new_hint(hint)

    def clusters_text(clusters: tuple[Cluster, ...]) -> str:
        return dumps([dict(vars(c)) for c in clusters])

    def encode(s: Symbol) -> str:
        (name, section, address, size, type_, binding, visibility, relocations, by_class,
         targets, pages, span_pages, aliases, unattributed, demangled, source, hint,
         pages_exclusive, _, clusters, string_targets) = _symbol_values(vars(s))
        kind = (type_, binding, visibility)
        count_key = (*by_class.items(), None, *targets.items())
        return (f'{{"name":{string(name)},'
                f'"section":{sections.get(section) or new_section(section)},'
                f'"address":{address},"size":{size},{kinds.get(kind) or new_kind(kind)},'
                f'"relocations":{relocations},'
                f'{counts.get(count_key) or new_counts(count_key, by_class, targets)},'
                f'"pages":{pages},"span_pages":{span_pages},'
                f'"aliases":[{",".join(map(string, aliases)) if aliases else ""}],'
                f'"unattributed":{"true" if unattributed else "false"},'
                f'"demangled":{"null" if demangled is None else string(demangled)},'
                f'"source":{"null" if source is None else string(source)},'
                f'"hint":{hints.get(id(hint)) or new_hint(hint)},'  # hint_text, inline
                f'"pages_exclusive":{pages_exclusive},'
                f'"clusters":{clusters_text(clusters) if clusters else "[]"},'
                f'"string_targets":{"null" if string_targets is None else string_targets}}}')

    return SymbolEncoder(encode, hint_text, clusters_text)


def library_from_dict(d: Mapping[str, Any]) -> Library:
    """Rebuild a Library from its JSON form (a report written by this tool)."""
    try:
        rel = d["relocations"]
        pages = d["pages"]
        relro_range = d.get("relro_range")
        return Library(
            path=d["path"],
            soname=d.get("soname"),
            file_type=d["file_type"],
            pie=d["pie"],
            machine=d["machine"],
            elf_class=d["elf_class"],
            endian=d["endian"],
            word_size=d["word_size"],
            page_size=d["page_size"],
            max_page_size=d["max_page_size"],
            file_size=d["file_size"],
            build_id=d.get("build_id"),
            sections=tuple(Section(**s) for s in d["sections"]),
            segments=tuple(Segment(**g) for g in d["segments"]),
            relro_range=None if relro_range is None else (relro_range["start"], relro_range["end"]),
            relro=d["relro"],
            bind_now=d["bind_now"],
            textrel=d["textrel"],
            textrel_sections=tuple(d["textrel_sections"]),
            init_array_entries=d["init_array_entries"],
            has_dt_init=d["has_dt_init"],
            static_initializers=d["static_initializers"],
            relocations=RelocationSummary(
                total=rel["total"], by_type=rel["by_type"], by_class=rel["by_class"],
                by_table=rel["by_table"], by_section=rel["by_section"],
                encodings=rel.get("encodings", {}), no_ops=rel.get("no_ops", 0),
                notes=tuple(rel.get("notes", ()))),
            pages=_pages_from_dict(pages),
            pages_by_size=tuple(_pages_from_dict(p) for p in d.get("pages_by_size", ())),
            symbols=tuple(_symbol_from_dict(s) for s in d["symbols"]),
            symbol_table=d.get("symbol_table"),
            symbols_from=d.get("symbols_from"),
            has_debug_info=d.get("has_debug_info", False),
            own_export_relocations=d.get("own_export_relocations", {}),
            initializers=d.get("initializers", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RelrocheckError(f"not a relrocheck JSON report (bad or missing field: {exc})"
                              ) from None


def _symbol_from_dict(s: Mapping[str, Any]) -> Symbol:
    hint = s.get("hint")
    return Symbol(
        name=s["name"], section=s["section"], address=s["address"], size=s["size"],
        type=s["type"], binding=s["binding"], visibility=s["visibility"],
        relocations=s["relocations"], by_class=s["by_class"], targets=s["targets"],
        pages=s["pages"], span_pages=s["span_pages"], aliases=tuple(s.get("aliases", ())),
        unattributed=s.get("unattributed", False), demangled=s.get("demangled"),
        source=s.get("source"),
        hint=None if hint is None else Hint(kind=hint["kind"], advice=hint["advice"]),
        pages_exclusive=s.get("pages_exclusive", 0),
        clusters=tuple(Cluster(**c) for c in s.get("clusters", ())),
        string_targets=s.get("string_targets"),
    )
