"""The engine's entry point: measure an ELF file into a Library, with everything derived.

`measure` gives the numbers; this adds what a person needs to act on them, per symbol: the
demangled name (c++filt), the source line (DWARF, when present) and a fix hint.

The enrichment must stay cheap next to measuring. Measured on libLLVM-15 (6,118 symbols,
6,045 mangled, no debug info; 2 cores): measure ~180 ms; c++filt ~8 ms on the other core
(then with each _ZTV/_ZTI type sent once; every mangled name is sent now, 40% more for
c++filt and a few ms less here), while this process computes hints (~6 ms) and fills in the
symbols (~5 ms); the DWARF check < 1 ms. See relrocheck/demangle.py, relrocheck/debugfile.py
and relrocheck/dwarf.py for their own costs.
"""

from __future__ import annotations

from collections.abc import Mapping

from relrocheck.measure import DEFAULT_PAGE_SIZE, measure
from relrocheck.model import Hint, Library, Symbol


def analyze(path: str, page_size: int = DEFAULT_PAGE_SIZE, debug_file: str | None = None,
            demangle: bool = True, sources: bool = True, hints: bool = True,
            debuginfod: bool = False, also_page_sizes: tuple[int, ...] = (),
            got_slots: bool = True) -> Library:
    """Measure `path` and fill each symbol's `demangled`, `source` and `hint`.

    debug_file: DWARF to read source lines from, instead of the library's own debug info or
      the system's (/usr/lib/debug/.build-id, .gnu_debuglink); must match its build-id.
      When the library is stripped, the debug file's .symtab also names its symbols (the
      library is measured with it: relocations are attributed to every symbol).
    also_page_sizes: further page sizes to count pages for (Library.pages_by_size).
    got_slots: name the GOT/PLT slots (a baseline records them; a report shows none).
    demangle, sources, hints: leave a part out (e.g. a scan that shows no names; without
      sources no debug file is looked for). The numbers are otherwise the same.
    debuginfod: when no debug file is found locally, ask the servers of DEBUGINFOD_URLS
      (relrocheck/debuginfod.py). Off by default: a gate run on every build should not wait
      for the network; report and explain turn it on.
    """
    debug: str | None = None
    symbols_from: str | None = None
    if sources:
        from relrocheck.debugfile import debug_file_for, has_symtab, library_file

        # Found from the library's headers, before measuring: a stripped library whose
        # debug file names its symbols is measured once, with them (it was measured twice).
        found = library_file(path)
        if found is not None:  # else measuring it says what is wrong with it
            debug = debug_file_for(found, debug_file, debuginfod)
            if debug is not None and not found.has_symtab and has_symtab(debug):
                symbols_from = debug  # a stripped library: its debug file names every symbol
    lib = measure(path, page_size=page_size, symbols_from=symbols_from,
                  also_page_sizes=also_page_sizes, got_slots=got_slots)
    demangler = None
    if demangle:
        from relrocheck.demangle import Demangler

        demangler = Demangler()
    try:
        if demangler is not None:
            # c++filt works on the other core while hints and sources are computed here.
            # (A bucket's "<unattributed in ...>" is no mangled name: it is not sent.)
            demangler.submit([s.name for s in lib.symbols])
        lines: Mapping[int, str] = {}
        if debug is not None:
            from relrocheck.dwarf import producers, source_lines
            from relrocheck.record import replace

            lines = source_lines(lib, debug)
            # The compilers and flags of its units: a baseline records them, so a check
            # against a baseline of another configuration can say so.
            lib = replace(lib, producers=tuple(producers(debug)))
        by_index: Mapping[int, Hint] = {}
        if hints:
            from relrocheck.hints import classify_library

            # Sources first: a hint says where generated code must be fixed.
            by_index = classify_library(lib, lines)
        names = demangler.result() if demangler is not None else {}
    finally:
        if demangler is not None:
            demangler.close()
    _complete(lib.symbols, names, by_index, lines)
    return lib


def _complete(symbols: tuple[Symbol, ...], names: Mapping[str, str],
              hints: Mapping[int, Hint], lines: Mapping[int, str]) -> None:
    """Fill the demangled name, source and hint into the symbols `measure` just made.

    They are frozen for everyone downstream, but nobody has seen them yet: completing them
    here, in place, costs a dict update per symbol, where copying them with
    record.replace would cost 5 us each (30 ms for libLLVM's 6,118). measure sets the
    three fields to None: only those with a value are written (a C library has no demangled
    names), in one pass (each pass over a large library's symbols misses the caches again).
    """
    name_of, hint_of, line_of = names.get, hints.get, lines.get
    for i, s in enumerate(symbols):
        fields = vars(s)
        if names:  # else not even the name is read: a C library's 10,000 symbols
            demangled = name_of(s.name)
            if demangled is not None:
                fields["demangled"] = demangled
        hint = hint_of(i)
        if hint is not None:
            fields["hint"] = hint
        if lines and not s.unattributed:
            fields["source"] = line_of(s.address)
