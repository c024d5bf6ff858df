"""The engine's entry point: measure an ELF file into a Library, with everything derived."""

from __future__ import annotations

from relrocheck.measure import DEFAULT_PAGE_SIZE, measure
from relrocheck.model import Library


def analyze(path: str, page_size: int = DEFAULT_PAGE_SIZE) -> Library:
    return measure(path, page_size=page_size)
