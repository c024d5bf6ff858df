"""Why a symbol costs memory, and what change removes the cost: one `Hint` per symbol.

`classify` is a pure function of what `measure` already knows about a symbol (its size, its
relocated words by class and by what they point to, the pages they touch) and a few facts
about its library. It never reads the file. The first rule that fits wins; a symbol no rule
fits gets no hint rather than a vague one.

The kinds are a stable vocabulary: JSON reports, baselines and scans store them, and policies
may refer to them. Add kinds; never rename or remove one. `HINT_KINDS` documents each.

Reading the facts: a relocated word's target kind "rodata" means read-only data: string
literals and const tables without pointers. `Symbol.string_targets` tells them apart (text at
the target); a table pointing to read-only data that is not text gets the `pointer_table`
advice, not the strings one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from relrocheck.elf import ENC_MIPS_GOT
from relrocheck.model import Hint, Library, Symbol
from relrocheck.record import field, record
from relrocheck.words import plural

HINT_KINDS: Mapping[str, str] = {
    "string_pointer_table":
        "A table of pointers to string literals, or records whose pointers all point to "
        "strings. Each pointer is a relocation written at load. Fix: one string blob plus "
        "integer offsets (no relocations, the table moves to .rodata); a lone string "
        "pointer becomes a char array.",
    "writable_pointer_array":
        "A non-const array in .data whose every word is a relocated pointer (to functions "
        "or objects). Fix: `T *const name[]` moves it to .data.rel.ro, read-only after load "
        "but still written at load; indices or offsets instead of pointers remove the cost.",
    "pointer_table":
        "A const table of pointers to functions or objects (in .data.rel.ro): every word is "
        "relocated. Fix: index one array of the objects, or switch over an enum for "
        "functions, instead of storing addresses.",
    "sparse_pointers":
        "An object with a few pointers among at least a page of pointer-free data (a struct "
        "with a name pointer and a big payload, records mixing pointers and numbers). The "
        "pointers drag all of it into the writable segment and spread dirty pages. Fix: "
        "split the pointer-free part into a separate const object (.rodata, shared).",
    "cxx_vtable":
        "A C++ vtable (_ZTV), VTT (_ZTT) or construction vtable (_ZTC): one relocated slot "
        "per virtual function. Hidden visibility or -Bsymbolic(-functions) turn symbolic "
        "slots into RELATIVE ones (faster load, same pages); only clang's relative vtables "
        "(-fexperimental-relative-c++-abi-vtables) remove the relocations.",
    "cxx_typeinfo":
        "C++ typeinfo (_ZTI): pointers to the type's name, to the type_info class's vtable "
        "and to base classes' typeinfo. Typeinfo is data: -Wl,-Bsymbolic (not "
        "-Bsymbolic-functions) or hidden visibility makes those inside the library RELATIVE, "
        "but the typeinfo of exception types thrown to users must stay visible for `catch` "
        "to match across libraries; -fno-rtti removes typeinfo where typeid, dynamic_cast "
        "and exceptions of the type are not needed.",
    "symbolic_to_own_export":
        "Most relocations are symbolic against symbols this library itself exports: the "
        "loader looks each one up by name, because the symbol could be interposed. Fix: "
        "-fvisibility=hidden for what is not API (never advised to a library that already "
        "hides), internal aliases for the API, or -Wl,-Bsymbolic / -Bsymbolic-functions: "
        "they become RELATIVE (faster load; the words are still written).",
    "got":
        "The GOT (.got/.got.plt) holds entries for this library's own exported symbols, "
        "looked up at load, counted apart: PLT slots (calls: -Wl,-Bsymbolic-functions or "
        "-fno-semantic-interposition make them direct) and GLOB_DAT data references "
        "(-Wl,-Bsymbolic, or -Bsymbolic-functions for function addresses only); "
        "-fvisibility=hidden only where the library does not hide already. Entries for "
        "other libraries' symbols are unavoidable and get no hint.",
    "init_array":
        "Static initializers or finalizers (.init_array/.fini_array): each entry is a "
        "relocated function pointer and runs code at load. Fix: constexpr constructors or "
        "function-local statics instead of global objects with constructors.",
    "unattributed":
        "Relocated words in a writable section that no symbol covers: the library is "
        "stripped (only .dynsym), or the objects have no symbol (switch tables, compound "
        "literals, assembly). Fix: its debug symbols (by build-id, or --debug-file) or an "
        "unstripped build name them.",
    "textrel":
        "Relocations in a read-only section (TEXTREL): objects compiled without -fPIC "
        "(non-PIC C/C++ objects, assembly with absolute addresses, static archives built "
        "for executables). The loader makes those pages writable and they stop being "
        "shared. Fix: build every object with -fPIC; -Wl,-z,text turns it into a link "
        "error.",
    "writable_no_pointers":
        "Writable data without pointers: a table of at least 256 bytes, or a page or more of "
        "anything. Nothing is written at load; it costs memory once the program writes it, "
        "and it is not shared. If it is never modified, const moves it to .rodata.",
    "mixed_records":
        "Records (or a table) mixing function pointers with strings or numbers, such as "
        "{name, handler} command tables or class descriptions: every pointer is written at "
        "load, and symbolic ones are looked up by name. Fix: index a table by an enum and "
        "switch over it for the functions, and take the names from one string blob by "
        "offset; the records then need no relocations.",
}

# Kinds whose fix removes the symbol's relocations (not only their symbol lookups): what the
# fix plan may count as freeing pages. -Bsymbolic, hidden visibility and the GOT fixes leave
# RELATIVE words that are still written at load.
REMOVING_KINDS: frozenset[str] = frozenset({
    "string_pointer_table", "writable_pointer_array", "pointer_table", "cxx_vtable",
    "cxx_typeinfo", "mixed_records",
})

# Objects the compiler and the C runtime put into every library (crtbeginS.o, the C++ EH
# personality reference): nothing in the library's source to fix.
_TOOLCHAIN_NAMES = frozenset({
    "__dso_handle", "__TMC_END__", "__TMC_LIST__", "__FRAME_END__", "__JCR_END__",
    "__JCR_LIST__", "_GLOBAL_OFFSET_TABLE_", "_DYNAMIC", "__frame_dummy_init_array_entry",
    "__do_global_dtors_aux_fini_array_entry", "__init_array_start", "__fini_array_start",
    "__bss_start", "_edata", "_end",
})
_TOOLCHAIN_PREFIXES = ("DW.ref.", "completed.", "__x86.get_pc_thunk", "__stack_chk_guard",
                       "__gmon_start__")

# Source paths of generated code: its fix belongs in the generator.
_GENERATED = re.compile(r"(\.eo\.[ch]|\.eot\.[ch]|\.pb(-c)?\.c|\.tab\.c|lex\.yy\.c|_gen\.c|"
                        r"\.gen\.c|(^|/)(generated|gen|autogen)/)")

# Thresholds, as fractions of a symbol's bytes or relocations.
_DENSE = 0.9  # relocated words cover at least 90% of the bytes: a table of pointers
_RECORDS = 0.25  # records with a pointer per 4 words or more (name/value pairs are 0.5)
_MOSTLY = 0.9  # a target kind is "mostly" the kind of 90% of the relocated words
_SPARSE = 0.5  # pointers are at most half of the bytes
_TABLE = 8  # fewer pointers are a struct (an ops table), not a table worth restructuring
_SMALL_TABLE = 256  # a pointer-free writable object this big is a table, not a variable


@record
class LibraryFacts:
    """What `classify` needs to know about the library a symbol belongs to."""

    word_size: int
    page_size: int
    section_kinds: Mapping[str, str]  # section name -> model.SECTION_KINDS value
    textrel_sections: tuple[str, ...] = ()
    symbol_table: str | None = None  # .symtab, .dynsym, or None
    # PLT slots (JUMP_SLOT) that call this library's own exported functions.
    own_plt_calls: int = 0
    # The library hides what it does not export (-fvisibility=hidden or attributes): hidden
    # symbols in .symtab (lld keeps STV_HIDDEN on the symbols it localizes; GNU ld does not).
    hides_symbols: bool = False
    sources: Mapping[int, str] = field(default_factory=dict)  # address -> "file:line"
    initializers: Mapping[str, int] = field(default_factory=dict)  # unit -> initializer bytes
    # A MIPS file: its GOT's global entries are written without records (no GLOB_DAT).
    mips_got: bool = False

    @classmethod
    def of(cls, lib: Library, sources: Mapping[int, str] | None = None) -> LibraryFacts:
        return cls(word_size=lib.word_size, page_size=lib.page_size,
                   section_kinds={s.name: s.kind for s in lib.sections},
                   textrel_sections=tuple(lib.textrel_sections),
                   symbol_table=lib.symbol_table,
                   own_plt_calls=sum(lib.own_export_relocations.get("plt", {}).values()),
                   hides_symbols=_hides_symbols(lib.symbols),
                   sources=sources if sources is not None else
                   {s.address: s.source for s in lib.symbols if s.source},
                   initializers=lib.initializers,
                   mips_got=ENC_MIPS_GOT in lib.relocations.encodings.values())


def _hides_symbols(symbols: tuple[Symbol, ...]) -> bool:
    # A list first: most libraries have no hidden symbol in their table, and the whole table
    # is read (a comprehension is twice as fast as any() over a generator).
    hidden = [s for s in symbols if s.visibility == "HIDDEN"]
    return any(not _is_toolchain(s.name) for s in hidden)


def classify(s: Symbol, facts: LibraryFacts) -> Hint | None:
    """The hint for one symbol (or unattributed bucket), or None when no rule fits."""
    n = s.relocations
    kind = facts.section_kinds.get(s.section, "")
    if n == 0:
        return None if s.unattributed else _without_pointers(s, kind, facts)
    if not s.unattributed and _is_toolchain(s.name):
        return None  # put there by the compiler or the C runtime: nothing to fix in the source
    hint = _classify_relocated(s, n, kind, facts)
    if hint is not None and hint.kind in _RESTRUCTURING and not s.unattributed:
        hint = _where_to_fix(s, hint, facts)
    return hint


def _without_pointers(s: Symbol, kind: str, facts: LibraryFacts) -> Hint | None:
    # The sizes first: most such symbols are small variables, and their names need not be
    # read (a C library has thousands).
    if kind != "data" or s.size < min(_SMALL_TABLE, facts.page_size) or _is_toolchain(s.name):
        return None
    if s.size >= facts.page_size:
        return _hint("writable_no_pointers",
                     f"{_bytes(s.size)} of writable data without pointers: nothing is "
                     "written at load, it costs memory only where the program writes it. "
                     "If it is never modified, declare it const to move it to .rodata.")
    if s.size >= _SMALL_TABLE and s.type == "OBJECT":
        return _hint("writable_no_pointers",
                     f"a table of {_bytes(s.size)} without pointers in writable {s.section}: "
                     "if it is never modified, declare it const: it moves to .rodata, "
                     "shared by every process, instead of a private copy in the writable "
                     "segment.")
    return None


# Hints that change the object's layout: where it is generated or exported, say where the
# change belongs.
_RESTRUCTURING = frozenset({"string_pointer_table", "writable_pointer_array", "pointer_table",
                            "sparse_pointers", "mixed_records"})


def _where_to_fix(s: Symbol, hint: Hint, facts: LibraryFacts) -> Hint:
    source = facts.sources.get(s.address) or s.source
    if source and _GENERATED.search(source.rsplit(":", 1)[0]):
        return _hint(hint.kind, f"{hint.advice} It is generated code ({source}): change the "
                     "generator, not this file.")
    if s.binding in ("GLOBAL", "WEAK") and s.visibility in ("DEFAULT", "PROTECTED"):
        return _hint(hint.kind, f"{hint.advice} It is exported: if programs use it, its "
                     "layout is public ABI, and the fix is an ABI change (a new soname, or "
                     "accessor functions).")
    return hint


def _is_toolchain(name: str) -> bool:
    return name in _TOOLCHAIN_NAMES or name.startswith(_TOOLCHAIN_PREFIXES)


def _classify_relocated(s: Symbol, n: int, kind: str, facts: LibraryFacts) -> Hint | None:
    if s.section in facts.textrel_sections or kind == "readonly":
        return _hint("textrel",
                     f"{plural(n, 'relocation')} in the read-only section {s.section} "
                     "(TEXTREL): some objects were compiled without -fPIC (non-PIC objects, "
                     "assembly with absolute addresses, a static archive built for "
                     "executables). The loader makes those pages writable and dirty in every "
                     "process. Rebuild them with -fPIC; -Wl,-z,text makes this a link error.")
    if s.unattributed:
        return _bucket(s, kind, facts)
    name = s.name
    if name.startswith(("_ZTV", "_ZTT", "_ZTC")):
        return _vtable(s)
    if name.startswith("_ZTI"):
        return _typeinfo(s)
    targets = s.targets
    own = targets.get("own_export", 0)
    word = facts.word_size
    pointer_bytes = n * word
    density = pointer_bytes / s.size if s.size else 1.0
    mixed = _mixed_records(s, density)
    if mixed is not None:
        return mixed  # before the own-export rule: restructuring removes the cost, -Bsymbolic not
    if own * 2 >= n and s.by_class.get("symbolic", 0):
        return _own_export(s, own, facts)
    rodata = targets.get("rodata", 0)
    if rodata >= _MOSTLY * n:
        if s.string_targets is not None and s.string_targets * 2 < rodata:
            return _constants(s, rodata, kind)
        hint = _strings(s, kind, density, word)
        if hint is not None:
            return hint
    if kind == "data" and pointer_bytes >= s.size:
        return _writable_pointers(s)
    free = s.size - pointer_bytes
    if density <= _SPARSE and free >= facts.page_size:
        return _sparse(s, free, pointer_bytes, facts.page_size)
    if density >= _DENSE and n >= _TABLE and kind == "relro":
        return _hint("pointer_table",
                     f"table of {n} pointers to {_what(targets)}, each written at load. If "
                     "it is looked up by index, store indices into one array of the objects "
                     "(or switch over an enum for functions) instead of addresses.")
    if own:
        return _own_export(s, own, facts)
    return None


def classify_library(lib: Library, sources: Mapping[int, str] | None = None
                     ) -> dict[int, Hint]:
    """Hints for every symbol of a library with relocations or size, by index in lib.symbols.

    sources: address -> "file:line", when known before the symbols carry them.
    """
    facts = LibraryFacts.of(lib, sources)
    out = {}
    for i, s in enumerate(lib.symbols):
        if s.relocations or s.size:
            hint = classify(s, facts)
            if hint is not None:
                out[i] = hint
    return out


# -- the rules ---------------------------------------------------------------------------------


def _bucket(s: Symbol, kind: str, facts: LibraryFacts) -> Hint | None:
    n = s.relocations
    if kind == "got":
        own = s.targets.get("own_export", 0)
        if not own:
            return None  # entries for other libraries' symbols: nothing to fix here
        # PLT slots (calls) and GLOB_DAT entries (data references, function addresses) are
        # different fixes: -Bsymbolic-functions binds calls and function addresses only. All
        # PLT relocations are GOT words, so the library's count of own calls is this bucket's
        # when it holds them (BIND_NOW puts both kinds into .got).
        slots = s.by_class.get("plt", 0)
        calls = min(own, slots, facts.own_plt_calls)
        data = own - calls
        parts = []
        if calls:
            parts.append(f"PLT: {calls} of {slots} slots are calls to this library's own "
                         "exported functions, bound by name at load: -Wl,-Bsymbolic-functions "
                         "or -fno-semantic-interposition (or hidden visibility for what is not "
                         "API) make them direct calls")
        if data:
            # MIPS: the global part of the GOT, one entry per symbol from DT_MIPS_GOTSYM (the
            # local entries before it hold addresses inside the library).
            refs = s.by_class.get("symbolic", 0) if facts.mips_got else n - slots
            what = ("global GOT entries (written without records)" if facts.mips_got else
                    "GOT data references (GLOB_DAT)")
            parts.append(f"{what}: {data} of {refs} point to this "
                         "library's own exports, looked up by name at load: "
                         + ("internal (hidden) aliases used inside the library, or "
                            if facts.hides_symbols else
                            "-fvisibility=hidden for what is not API, internal aliases, or ")
                         + "-Wl,-Bsymbolic (-Bsymbolic-functions only for function addresses) "
                         "bind them at link time")
        if not parts:
            return None
        return _hint("got", "; ".join(parts) + ". The GOT words are still written at load.")
    if kind == "init":
        if n < 2:
            return None  # the C runtime's own entry (frame_dummy, __do_global_dtors_aux)
        if s.section.startswith(".fini"):
            what = ("static finalizers (__attribute__((destructor)) functions; usually one is "
                    "the C runtime's)")
        else:
            what = ("static initializers (one per translation unit with global objects that "
                    "have constructors, plus __attribute__((constructor)) functions; usually "
                    "one is the C runtime's)")
        units = ""
        if facts.initializers and not s.section.startswith(".fini"):
            # The entry count misses a new global in a unit that already had one: its
            # initializer only grows. Name the units, the largest first.
            ranked = sorted(facts.initializers.items(), key=lambda kv: (-kv[1], kv[0]))
            listed = ", ".join(f"{unit} {size} B" for unit, size in ranked[:5])
            more = f" and {len(ranked) - 5} more" if len(ranked) > 5 else ""
            units = (f" Initializer code per translation unit (_GLOBAL__sub_I_*): {listed}"
                     f"{more}; a new global with a constructor in one of them grows its "
                     "code, not the number of entries.")
        return _hint("init_array",
                     f"{n} {what}: each entry is a relocation and runs code at load. constexpr "
                     "constructors, or function-local statics built on first use, remove them."
                     f"{units}")
    if kind in ("data", "relro", "tls"):
        if facts.symbol_table == ".symtab":
            if n < 2:
                return None  # a lone word is the C runtime's __dso_handle
            why = ("no symbol covers them (switch tables, compound literals, string arrays "
                   "the compiler emitted without a name, assembly)")
        else:
            why = (f"the library is stripped ({facts.symbol_table or 'no symbol table'}), "
                   "so only exported symbols have names; install its debug symbols (found "
                   "by build-id under /usr/lib/debug, or given with --debug-file) or measure "
                   "an unstripped build to attribute them")
        extra = ""
        if s.clusters:
            largest = s.clusters[0]
            extra += (f" They form about {plural(len(s.clusters), 'probable object')}; the "
                      f"largest, {largest.words} words at 0x{largest.address:x}: "
                      f"{largest.label}.")
        own = s.targets.get("own_export", 0)
        if own:
            extra += (f" {own} of {n} are symbolic against this library's own exports "
                      "(-Wl,-Bsymbolic-functions / -Bsymbolic would make them RELATIVE).")
        return _hint("unattributed",
                     f"{plural(n, 'relocated word')} in {s.section}: {why}.{extra}")
    return None


def _writable_pointers(s: Symbol) -> Hint:
    if s.relocations == 1:
        return _hint("writable_pointer_array",
                     f"a pointer variable in writable {s.section}, written at load: if it never "
                     "changes, declare the pointer itself const (`T *const name`); that only "
                     "moves it to .data.rel.ro (read-only after load, still written at load).")
    return _hint("writable_pointer_array",
                 f"all {s.relocations} words are relocated pointers in writable {s.section}: if "
                 "the array never changes, declare the pointers const (`T *const name[]`); "
                 "that only moves it to .data.rel.ro (read-only after load, still written at "
                 f"load: {plural(s.pages, 'page')}). Indices or offsets instead of pointers "
                 "remove the cost.")


def _what(targets: Mapping[str, int]) -> str:
    parts = [label for kind, label in (("code", "functions"), ("rodata", "read-only data"),
                                       ("relro", "objects"), ("data", "objects"),
                                       ("own_export", "exported symbols"),
                                       ("external", "other libraries' symbols"))
             if targets.get(kind)]
    parts = list(dict.fromkeys(parts))
    return " and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _vtable(s: Symbol) -> Hint:
    return _vtable_hint(s.targets.get("own_export", 0))


# The rules for the most frequent symbols (a C++ library's thousands of vtables and typeinfo,
# a C library's exported tables) depend on a count or two: their hints are made once per
# distinct count, not formatted again for each symbol.
@lru_cache(maxsize=1024)
def _vtable_hint(own: int) -> Hint:
    # Short: big C++ libraries have thousands of vtables, and HINT_KINDS says the rest.
    symbolic = (f" {plural(own, 'slot')} bound by name to this library's own exports: hidden "
                "visibility or -Wl,-Bsymbolic(-functions) make them RELATIVE (faster load, same "
                "pages)." if own else "")
    return _hint("cxx_vtable",
                 f"C++ vtable, one relocated slot per virtual function.{symbolic} Only relative "
                 "vtables remove them: clang -fexperimental-relative-c++-abi-vtables (an ABI "
                 "change).")


def _typeinfo(s: Symbol) -> Hint:
    return _typeinfo_hint(s.targets.get("own_export", 0))


@lru_cache(maxsize=1024)
def _typeinfo_hint(own: int) -> Hint:
    # Typeinfo objects are data: -Bsymbolic-functions does not bind pointers to them.
    symbolic = (f" {plural(own, 'pointer')} bound by name to this library's own exports "
                "(base classes' typeinfo): -Wl,-Bsymbolic makes them RELATIVE "
                "(-Bsymbolic-functions does not: typeinfo is data), and so does hidden "
                "visibility, except for the typeinfo of exception types thrown to users: "
                "hidden, a `catch` in another library or the program no longer matches it."
                if own else "")
    return _hint("cxx_typeinfo",
                 f"C++ typeinfo (name, type_info vtable, bases).{symbolic} -fno-rtti drops it "
                 "where typeid, dynamic_cast and exceptions of the type are unused.")


def _own_export(s: Symbol, own: int, facts: LibraryFacts) -> Hint:
    return _own_export_hint(own, s.relocations, facts.hides_symbols)


@lru_cache(maxsize=1024)
def _own_export_hint(own: int, relocations: int, hides_symbols: bool) -> Hint:
    head = (f"{own} of {relocations} relocations are symbolic against symbols this library "
            "exports itself (looked up by name at load, since they could be interposed): ")
    if hides_symbols:
        # Already built with hidden visibility: what it exports is its API, on purpose.
        fix = ("the library already hides what it does not export, so these are its API: "
               "point at internal (hidden) aliases of them, or link with "
               "-Wl,-Bsymbolic-functions (functions) or -Wl,-Bsymbolic (data too)")
    else:
        fix = ("-fvisibility=hidden for what is not API, internal (hidden) aliases for what "
               "is, or -Wl,-Bsymbolic-functions (functions) / -Wl,-Bsymbolic (data too)")
    return _hint("symbolic_to_own_export",
                 f"{head}{fix} make them RELATIVE; the words are still written at load.")


def _mixed_records(s: Symbol, density: float) -> Hint | None:
    """Records holding function pointers next to strings or numbers (command tables)."""
    n = s.relocations
    targets = s.targets
    functions = targets.get("code", 0) + targets.get("own_export", 0)
    strings = targets.get("rodata", 0)
    if n < _TABLE or functions < 2 or functions + strings < _MOSTLY * n:
        return None
    if not strings and density >= _DENSE:
        return None  # nothing but function pointers: a pointer_table
    if strings and functions < n / 4:
        return None  # mostly strings, with a stray callback: the strings advice fits better
    names = (f"{plural(strings, 'string pointer')} and " if strings else "")
    blob = (", and take the names from one string blob by offset" if strings else "")
    return _hint("mixed_records",
                 f"records mixing {names}{plural(functions, 'function pointer')}"
                 f"{' with numbers' if density < _DENSE else ''}, each written at load: index "
                 f"a table by an enum and switch over it for the functions{blob}; the records "
                 "then become relocation-free .rodata.")


def _strings(s: Symbol, kind: str, density: float, word: int) -> Hint | None:
    n = s.relocations
    if n == 1 and s.size <= word:
        return _hint("string_pointer_table",
                     "a pointer to a string literal: declare the string itself as an array "
                     "(`const char name[] = \"...\";`) and it needs no relocation.")
    also = (" (Only declaring the pointers const would move it to .data.rel.ro, still "
            "written at load.)" if kind == "data" else "")
    if density >= _DENSE:
        return _hint("string_pointer_table",
                     f"table of {n} pointers to strings, each written at load: keep the "
                     "strings in one char array and store integer offsets into it (no "
                     f"relocations, the table moves to .rodata).{also}")
    if density >= _RECORDS:
        return _hint("string_pointer_table",
                     f"records holding {plural(n, 'string pointer')}: replace the `const char *` "
                     "members by offsets into one char array of all the strings, and the "
                     f"whole table becomes relocation-free .rodata.{also}")
    return None


def _constants(s: Symbol, rodata: int, kind: str) -> Hint:
    # Pointers into read-only data that is not text: numeric tables, other const objects.
    also = (" Declaring it const would only move it to .data.rel.ro, still written at load."
            if kind == "data" else "")
    return _hint("pointer_table",
                 f"{plural(rodata, 'pointer')} to read-only tables or constants (not strings), "
                 "each written at load: refer to the tables by an index or an enum (a switch, "
                 "or one array of them), or embed the small ones, and it becomes "
                 f"relocation-free .rodata.{also}")


def _sparse(s: Symbol, free: int, pointer_bytes: int, page_size: int) -> Hint:
    free_pages = -(-free // page_size)
    packed = -(-pointer_bytes // page_size)
    return _hint("sparse_pointers",
                 f"{plural(s.relocations, 'pointer')} among {_bytes(free)} of pointer-free "
                 f"data: the pointer-free part occupies {plural(free_pages, 'page')} that are "
                 f"writable only because of the pointers, which dirty {plural(s.pages, 'page')}"
                 " at load. Move the pointer-free part into a separate const object "
                 f"(.rodata, shared) and keep the pointers together ({plural(packed, 'page')}).")


# -- formatting ----------------------------------------------------------------------------------

_cache: dict[tuple[str, str], Hint] = {}


def _hint(kind: str, advice: str) -> Hint:
    # Hints repeat (every vtable without own exports gets the same text): share the objects.
    key = (kind, advice)
    hint = _cache.get(key)
    if hint is None:
        if len(_cache) > 4096:
            _cache.clear()
        hint = _cache[key] = Hint(kind=kind, advice=advice)
    return hint


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"
