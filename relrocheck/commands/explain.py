"""`relrocheck explain LIB SYMBOL`: every relocated word of one symbol, and what it points to."""

from __future__ import annotations

import argparse
import difflib
import json
import sys

from relrocheck.commands._common import add_debug_file, add_format, add_page_size
from relrocheck.errors import EXIT_OK, UsageError
from relrocheck.model import Library, Symbol

NAME = "explain"
ORDER = 40
HELP = "list every relocated word of one symbol: offset, type, target, page"
DESCRIPTION = """\
Show why one symbol costs what the report says: each word of it the loader writes at load
time, with its offset inside the symbol, the relocation type, what it points to (a
symbol+addend, or the string itself when the target is a string in read-only data) and the
page it lies on. Also the symbol's demangled name, its source line (with debug info) and the
fix hint.

SYMBOL is the raw (mangled) name, the demangled name, an alias, or an unattributed bucket as
the report prints it ("<unattributed in .data.rel.ro>").
"""
EPILOG = """\
examples:
  relrocheck explain build/libfoo.so names
  relrocheck explain build/libfoo.so 'vtable for Foo'
  relrocheck explain build/libfoo.so _ZTV3Foo --format json
  relrocheck explain build/libfoo.so '<unattributed in .got>'
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("library", metavar="LIB", help="ELF shared library or PIE executable")
    parser.add_argument("symbol", metavar="SYMBOL", help="symbol name, raw or demangled")
    add_format(parser, ("text", "json"))
    add_page_size(parser)
    add_debug_file(parser)


def find_symbols(lib: Library, name: str) -> list[Symbol]:
    """Symbols answering to `name` (raw, alias or demangled); all of them, since static
    objects of different files may share a name."""
    found = [s for s in lib.symbols if s.answers_to(name)]
    if found:
        return found
    # Every name a symbol answers to, once, in the report's order.
    candidates = list(dict.fromkeys(n for s in lib.symbols for n in (s.name, s.demangled) if n))
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    if not close:
        lowered = name.lower()
        close = [c for c in candidates if lowered in c.lower()][:5]
    suggestion = f"; close matches: {', '.join(close)}" if close else ""
    raise UsageError(f"{lib.path}: no symbol {name!r} in writable data{suggestion} "
                     "(`relrocheck report --top 0` lists them all)")


def execute(args: argparse.Namespace) -> int:
    from relrocheck.analyze import analyze
    from relrocheck.demangle import demangle_names
    from relrocheck.explain import relocated_words
    from relrocheck.render import explain as render

    lib = analyze(args.library, page_size=args.page_size, debug_file=args.debug_file,
                  debuginfod=args.debuginfod)
    results = []
    for symbol in find_symbols(lib, args.symbol):
        words = relocated_words(args.library, lib, symbol)
        results.append((symbol, words))
    targets = {w.target.symbol for _s, words in results for w in words if w.target.symbol}
    names = dict(demangle_names(targets)) if targets else {}
    if args.format == "json":
        document = {"symbols": [render.to_dict(lib, s, words, names) for s, words in results]}
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(render.render_text(lib, s, words, names)
                                   for s, words in results))
    return EXIT_OK
