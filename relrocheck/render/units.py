"""Number formatting shared by the text and Markdown renderers."""

from __future__ import annotations

from collections.abc import Mapping


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; exact bytes below 1 KiB."""
    if abs(n) < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def kib(n: int) -> str:
    """Bytes as KiB: whole when they are (8192 -> '8'), else two decimals (512 -> '0.50')."""
    return f"{n // 1024}" if n % 1024 == 0 else f"{n / 1024:.2f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def counts(mapping: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items()) or "none"
