"""Number formatting shared by the text and Markdown renderers."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; exact bytes below 1 KiB."""
    if abs(n) < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def counts(mapping: dict[str, int] | object) -> str:
    items = getattr(mapping, "items")()
    return ", ".join(f"{k} {v}" for k, v in items) or "none"
