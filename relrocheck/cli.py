"""Command line: wires the subcommands of relrocheck.commands, prints errors, picks exit codes.

Each module in relrocheck.commands exposes NAME, HELP, ORDER, `configure_parser(parser)` and
`execute(args) -> int`; this module only finds them, parses, and turns a RelrocheckError into
one line on stderr and exit code 2. Without a subcommand, `check` is implied, so that
`relrocheck --baseline update LIB` (the spelling users know) works as it reads.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import pkgutil
import sys
from types import ModuleType

from relrocheck import __version__
from relrocheck.errors import EXIT_ERROR, RelrocheckError

PROG = "relrocheck"
DEFAULT_COMMAND = "check"
_TOP_LEVEL_FLAGS = {"-h", "--help", "--version", "--cmake-dir"}

DESCRIPTION = """\
Measure and gate the memory a shared library costs every process that loads it.

Pointers stored in data of position-independent code need dynamic relocations; the loader
writes each one at load time, so every page holding one becomes private dirty memory in every
process. relrocheck reads the freshly linked ELF file and tells how many pages that is, which
symbols cause it and how to fix them, and fails the build when it grows.
"""

EPILOG = """\
examples:
  relrocheck report build/libfoo.so              what does it cost, and which symbols?
  relrocheck check build/libfoo.so --policy relro.yaml
  relrocheck --baseline update build/libfoo.so   accept the current numbers
  relrocheck explain build/libfoo.so my_table    every relocated word of one symbol
  relrocheck scan /usr/lib/x86_64-linux-gnu      which libraries cost the most?

exit codes: 0 ok, 1 policy violation or regression, 2 usage or input error.
"""


def _command_modules() -> list[ModuleType]:
    import relrocheck.commands as package

    modules = [importlib.import_module(f"{package.__name__}.{info.name}")
               for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


def build_parser(modules: list[ModuleType] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the folder of relrocheckConfig.cmake (for -Drelrocheck_DIR)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in modules if modules is not None else _command_modules():
        sub = subparsers.add_parser(module.NAME, help=module.HELP,
                                    description=getattr(module, "DESCRIPTION", module.HELP),
                                    epilog=getattr(module, "EPILOG", None),
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure_parser(sub)
        sub.set_defaults(execute=module.execute)
    return parser


def _with_default_command(argv: list[str], commands: set[str]) -> list[str]:
    if not argv or argv[0] in commands or argv[0] in _TOP_LEVEL_FLAGS:
        return argv
    return [DEFAULT_COMMAND, *argv]


class _ClosedStdout:
    """Stands in for a stdout the process was started without: every write is a broken pipe
    (each command already knows what that means for it), the flush at exit a no-op."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "stdout is closed")

    def flush(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    # A short-lived process that builds tens of thousands of acyclic objects: the cyclic
    # collector would only rescan them, several percent of a large library's run.
    gc.disable()
    if sys.stdout is None:  # started with stdout closed (>&-): writing fails like a left reader
        sys.stdout = _ClosedStdout()
    argv = list(sys.argv[1:] if argv is None else argv)
    modules = _command_modules()
    parser = build_parser(modules)
    args = parser.parse_args(_with_default_command(argv, {m.NAME for m in modules}))
    if not args.cmake_dir and not getattr(args, "execute", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        if args.cmake_dir:
            from relrocheck.cmakedir import cmake_dir

            print(cmake_dir())
            return 0
        return int(args.execute(args))
    except RelrocheckError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `relrocheck report ... | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0
