"""Untrusted names made safe for a line of text.

Symbol, section and file names come from the files we read. Shown raw, a newline in one
starts a new output line (a GitHub Actions workflow command, a forged "ok"), and an escape
sequence acts on the terminal. `printable` shows every control character as an escape.
"""

from __future__ import annotations

import re

# Unicode category Cc: C0 controls, DEL and the C1 controls (U+009B is a CSI on some terminals).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(s: str) -> str:
    """`s` with each control character and DEL as a `\\xNN` escape; backslashes untouched."""
    # str.isprintable() is a fast C loop: most names need no regular expression at all.
    return s if s.isprintable() else _CONTROL.sub(_escape, s)
