"""One error root; the CLI alone turns these into a message and an exit code."""

from __future__ import annotations

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_VIOLATION = 1  # the library is outside its policy or regressed against the baseline
EXIT_ERROR = 2  # usage or input error: nothing was judged


class RelrocheckError(Exception):
    """Base of every error the tool reports as one line, never as a traceback."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        from relrocheck.text import printable

        # Messages quote names and paths read from files: one line, no terminal escapes.
        return printable(f"{self.path}: {self.message}" if self.path else self.message)


class ElfError(RelrocheckError):
    """The file is not an ELF file we can measure: missing, truncated, malformed."""


class PolicyError(RelrocheckError):
    """The policy file is unreadable, not YAML, or violates the policy schema."""


class BaselineError(RelrocheckError):
    """The baseline file is missing, corrupt, or of a format version we do not know."""


class UsageError(RelrocheckError):
    """The command line asks for something impossible."""
