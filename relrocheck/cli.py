"""Command line: wires the subcommands of relrocheck.commands, prints errors, picks exit codes.

Each module in relrocheck.commands exposes NAME, HELP, ORDER, `configure_parser(parser)` and
`execute(args) -> int`; this module only finds them, parses, and turns a RelrocheckError into
one line on stderr and exit code 2. Without a subcommand, `check` is implied, so that
`relrocheck --baseline update LIB` (the spelling users know) works as it reads.

Options may stand anywhere between the arguments (`check a.so --policy p.yaml b.so`): each
subcommand parses its arguments intermixed. A first word that is no file but close to a
command or an option of `check` (`relrocheck reprot lib.so`, `relrocheck baseline update
lib.so`) is answered with "did you mean ...?" and exit 2: it is a typo, not a library.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
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


def _command_modules(only: str | None = None) -> list[ModuleType]:
    """Every command module, or just the one named `only` when there is one (each module is
    named after its command): a run imports what its command needs, not what all do."""
    import relrocheck.commands as package

    # The folder listed directly: pkgutil.iter_modules imports inspect, a tenth of the
    # start-up of a small library's report.
    names = sorted({name[:-3] for folder in package.__path__ for name in os.listdir(folder)
                    if name.endswith(".py") and not name.startswith("_")})
    if only in names:
        names = [only]
    modules = [importlib.import_module(f"{package.__name__}.{name}") for name in names]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's, with the terminal width found without importing shutil (and with it
    fnmatch, bz2 and lzma): argparse makes a formatter for every add_argument, so the
    import cost every run 5 ms although help is rarely printed."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         width if width is not None else _terminal_columns() - 2)


def _terminal_columns() -> int:
    """shutil.get_terminal_size().columns: $COLUMNS, else the terminal's, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def build_parser(modules: list[ModuleType] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the folder of relrocheckConfig.cmake (for -Drelrocheck_DIR)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in modules if modules is not None else _command_modules():
        sub = subparsers.add_parser(module.NAME, help=module.HELP,
                                    description=getattr(module, "DESCRIPTION", module.HELP),
                                    epilog=getattr(module, "EPILOG", None),
                                    formatter_class=_HelpFormatter)
        module.configure_parser(sub)
        sub.set_defaults(execute=module.execute)
    return parser


def _version() -> str:
    """The version, and whether this install runs the compiled kernels (relrocheck/native.py):
    an install without a C compiler is correct but slower, and this is where it shows."""
    from relrocheck.native import kernels

    how = "compiled kernels" if kernels is not None else \
        "pure Python: the compiled kernels are not built or RELROCHECK_PURE_PYTHON is set"
    return f"{PROG} {__version__} ({how})"


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


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _typo_suggestion(argv: list[str], commands: dict[str, argparse.ArgumentParser]
                     ) -> str | None:
    """What a first word that is neither a command nor a file was probably meant to be."""
    if not argv or argv[0] in commands or argv[0].startswith("-"):
        return None
    word = argv[0]
    if os.path.lexists(word) or "/" in word:
        return None
    check = commands.get(DEFAULT_COMMAND)
    if check is not None:
        for action in check._actions:
            if f"--{word}" in action.option_strings:
                # `relrocheck baseline update lib.so`: the option without its dashes.
                value = f" {argv[1]}" if action.nargs is None and action.choices and \
                    len(argv) > 1 and argv[1] in action.choices else ""
                return f"--{word}{value}"
    import difflib  # only for a mistyped command

    close = difflib.get_close_matches(word, list(commands), n=1, cutoff=0.75)
    return close[0] if close else None


def main(argv: list[str] | None = None) -> int:
    # A short-lived process that builds tens of thousands of acyclic objects: the cyclic
    # collector would only rescan them, several percent of a large library's run.
    gc.disable()
    if sys.stdout is None:  # started with stdout closed (>&-): writing fails like a left reader
        sys.stdout = _ClosedStdout()
    argv = list(sys.argv[1:] if argv is None else argv)
    # An explicit command needs its own parser only: the others are neither parsed with nor
    # suggested (a command word is no typo).
    modules = _command_modules(argv[0] if argv else None)
    parser = build_parser(modules)
    commands = _subparsers(parser)
    suggestion = _typo_suggestion(argv, commands)
    if suggestion is not None:
        from relrocheck.text import printable

        print(f"{PROG}: error: {printable(argv[0])!r} is neither a file nor a command: did you "
              f"mean {suggestion!r}? (`{PROG} --help` lists the commands)", file=sys.stderr)
        return EXIT_ERROR
    argv = _with_default_command(argv, set(commands))
    if argv and argv[0] in commands:
        # Intermixed: options between the library arguments, as a newcomer writes them.
        args = commands[argv[0]].parse_intermixed_args(argv[1:])
        args.command, args.cmake_dir = argv[0], False
    else:
        args = parser.parse_args(argv)
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
    except OSError as exc:
        # Writing the output failed (a full disk, an I/O error): one line, not a traceback.
        discard_stdout()
        print(f"{PROG}: error: writing the output failed: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_ERROR


def discard_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit cannot fail again (exit 120):
    for a command whose output is lost (check keeps its verdict's exit code then)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
        finally:
            if null != 1:
                os.close(null)
    except OSError:
        pass


def run() -> None:
    """The `relrocheck` command: `main`, then an exit that skips freeing every object.

    A large library's measurement leaves tens of thousands of objects; the interpreter's
    own shutdown frees them one by one (25 ms for libLLVM's report) before the exit code
    reaches the build. When nothing else waits for shutdown (no atexit hook, no other
    thread), the standard streams are flushed here and the process ends at once, with
    main's code: also when the reader of stdout left (as main answers a BrokenPipeError;
    a gate flushes its verdict itself), and 120, as the interpreter gives, when a stream
    cannot be flushed for another reason.
    """
    code = main()
    import atexit

    threading = sys.modules.get("threading")
    ncallbacks = getattr(atexit, "_ncallbacks", None)
    if ncallbacks is None or ncallbacks() or (threading and threading.active_count() > 1):
        sys.exit(code)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None and not getattr(stream, "closed", False):  # as Python does
                stream.flush()
    except BrokenPipeError:
        os._exit(code)  # the reader left: as main answers it (a gate has flushed its verdict)
    except (OSError, ValueError):
        os._exit(120)
    os._exit(code)
