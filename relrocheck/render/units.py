"""Number formatting shared by the text and Markdown renderers."""

from __future__ import annotations

from collections.abc import Mapping

from relrocheck.words import human_bytes, plural

__all__ = ["counts", "human_bytes", "kib", "plural"]


def kib(n: int) -> str:
    """Bytes as KiB: whole when they are (8192 -> '8'), else two decimals (512 -> '0.50')."""
    return f"{n // 1024}" if n % 1024 == 0 else f"{n / 1024:.2f}"


def counts(mapping: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items()) or "none"
