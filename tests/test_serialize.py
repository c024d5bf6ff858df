"""The report's JSON text: the symbols' template encoding (serialize.symbols_json) writes what
the generic encoding of symbol_to_dict writes, byte for byte, in Python and by the compiled
kernel (kernels/) alike.

The libraries are built here (with debug info, so that symbols carry sources), measured from
the system where present, and made up for what no compiler emits (names with quotes,
control characters, non-ASCII and undecodable bytes; aliases; clusters; other field orders).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from libbuild import build_library, fixture

from relrocheck import native, serialize
from relrocheck.analyze import analyze
from relrocheck.model import Cluster, Hint, Symbol, symbol_from_fields
from relrocheck.record import replace
from relrocheck.serialize import (
    report_document,
    report_json_chunks,
    symbol_encoder,
    symbol_to_dict,
    symbols_json,
)

dumps = json.JSONEncoder(separators=(",", ":")).encode

SYSTEM_LIBRARIES = [Path("/usr/lib/x86_64-linux-gnu") / name
                    for name in ("libz.so.1", "libstdc++.so.6")]


@pytest.fixture(params=["python", "compiled"], autouse=True)
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with the template in Python and with the compiled kernel."""
    if request.param == "python":
        monkeypatch.setattr(serialize, "kernels", None)
    elif native.kernels is None:
        pytest.skip("the compiled kernels are not built")
    return str(request.param)


def generic(symbols: tuple[Symbol, ...] | list[Symbol]) -> str:
    return dumps([symbol_to_dict(s) for s in symbols])[1:-1]


@pytest.fixture(scope="module")
def libraries(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    build = tmp_path_factory.mktemp("serialize")
    built = [build_library(build, "events", fixture("events.eo.c"), flags=["-g"]),
             build_library(build, "vtables", fixture("cxx_vtables.cpp"), lang="c++"),
             build_library(build, "stripped", fixture("stripped_objects.c"), flags=["-s"]),
             build_library(build, "tls", fixture("tls.c"))]
    return [str(p) for p in built] + [str(p) for p in SYSTEM_LIBRARIES if p.exists()]


def test_symbols_json_is_the_generic_encoding(libraries: list[str]) -> None:
    for path in libraries:
        lib = analyze(path)
        assert lib.symbols, path
        assert symbols_json(lib.symbols, dumps) == generic(lib.symbols), path


def test_report_in_pieces_is_the_whole_document_byte_for_byte(libraries: list[str]) -> None:
    libs = [analyze(path) for path in libraries[:3]]
    errors = [("/missing.so", "no such file")]
    for top in (None, 2):
        for batch in (1, 3, 2000):
            text = "".join(report_json_chunks(libs, errors, top=top, batch=batch))
            assert text == dumps(report_document(libs, errors, top=top)), (top, batch)


def made_up_symbol(**fields: object) -> Symbol:
    base = Symbol(name="table", section=".data.rel.ro", address=0x4010, size=64,
                  type="OBJECT", binding="GLOBAL", visibility="DEFAULT", relocations=8,
                  by_class={"relative": 7, "symbolic": 1}, targets={"rodata": 8}, pages=1,
                  span_pages=1)
    return replace(base, **fields)


MADE_UP = [
    made_up_symbol(),
    made_up_symbol(name='quote" back\\slash\ttab\nnewline\x01\x7f', aliases=("a", 'b"c')),
    made_up_symbol(name="caf\u00e9_\u2603_\U0001f600", demangled="n\u00e4me::\u00fc()",
                   source="/src/t\u00e4ble.c:12"),
    made_up_symbol(name="bytes_\udcff\udc80", demangled=None),  # surrogateescape'd ELF bytes
    made_up_symbol(hint=Hint(kind="pointer_table", advice='say "\u00e9" \\ \x00 at load'),
                   pages_exclusive=3, string_targets=5),
    made_up_symbol(by_class={}, targets={}, relocations=0, size=0, span_pages=0, pages=0),
    made_up_symbol(name="<unattributed in .data>", type="", binding="", visibility="",
                   unattributed=True, address=2**63 + 5, size=2**40,
                   clusters=(Cluster(address=0x5000, size=48, words=6, stride=8,
                                     targets={"code": 6}, label='a "table" of code'),)),
]


def test_made_up_symbols_encode_like_the_generic_encoding() -> None:
    hint = Hint(kind="cxx_vtable", advice="shared")
    symbols = [*MADE_UP, *(made_up_symbol(hint=hint, name=f"v{i}") for i in range(3))]
    assert symbols_json(symbols, dumps) == generic(symbols)
    # One encoder for several batches, as report_json_chunks keeps it: the same text.
    encode = symbol_encoder(dumps)
    halves = [symbols_json(symbols[:4], dumps, encode), symbols_json(symbols[4:], dumps, encode)]
    assert ",".join(halves) == generic(symbols)
    assert symbols_json([], dumps) == ""


def test_symbols_with_their_fields_in_another_order_keep_that_order() -> None:
    # Not what measure builds; the generic encoding says what the keys are then.
    fields = dict(reversed(list(vars(made_up_symbol()).items())))
    odd = symbol_from_fields(fields)
    assert symbols_json([odd], dumps) == generic([odd])
    assert json.loads(symbols_json([odd], dumps)) == json.loads(generic([made_up_symbol()]))
