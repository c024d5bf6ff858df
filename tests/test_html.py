"""The HTML page map in a real headless browser (Debian's chromium): the number of page
elements equals the writable file-backed pages readelf's program headers give, each page's
relocation count matches readelf's relocation offsets, a click lists the page's symbols, the
symbol table sorts, the diff marks pages that became dirty, and nothing is fetched."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import oracle
import pytest
from gatelibs import run_cli
from libbuild import build_library, fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="chromium is needed to test the HTML page map")
PAGE = 4096
# Page elements as the page map writes them (the test reads the DOM chromium produced).
PAGE_ELEMENT = re.compile(r'<button class="page" ([^>]*)>')


def chromium(tmp_path: Path, html: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *args,
         html.as_uri()], capture_output=True, text=True, timeout=120)


def dump_dom(tmp_path: Path, html: Path, script: str = "") -> str:
    """The DOM after the page's own script and then `script` ran."""
    page = html
    if script:
        page = html.with_suffix(".run.html")
        page.write_text(html.read_text().replace("</body>", f"<script>{script}</script></body>"))
    proc = chromium(tmp_path, page, "--dump-dom")
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def attributes(tag_attrs: str) -> dict[str, str]:
    return dict(re.findall(r'([\w-]+)(?:="([^"]*)")?', tag_attrs))


def readelf_writable_file_pages(lib: Path) -> list[int]:
    """Page addresses of the file-backed bytes of every writable PT_LOAD, from readelf -lW."""
    out = subprocess.run(["readelf", "-lW", str(lib)], capture_output=True, text=True,
                         check=True).stdout
    pages = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "W" in "".join(f[6:-1]):
            vaddr, filesz = int(f[2], 16), int(f[4], 16)
            if filesz:
                pages += range(vaddr // PAGE * PAGE, (vaddr + filesz - 1) // PAGE * PAGE + 1,
                               PAGE)
    return pages


def readelf_relocations_per_page(lib: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for offset in oracle.relocation_offsets(lib):
        counts[offset // PAGE * PAGE] = counts.get(offset // PAGE * PAGE, 0) + 1
    return counts


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Several pages of writable data, some relocated, some not."""
    source = "".join(f'const char *table{i}[300] = {{"x{i}", "y{i}"}};\n' for i in range(4))
    source += "char plain[3 * 4096] = {1};\n"
    source += "".join(f'const char *late{i}[] = {{"p{i}", "q{i}"}};\n' for i in range(3))
    return build_library(tmp_path_factory.mktemp("html"), "pagemap", source)


def test_page_map_in_chromium(tmp_path: Path, big: Path) -> None:
    html = tmp_path / "map.html"
    proc = run_cli("report", "--format", "html", str(big))
    assert proc.returncode == 0, proc.stderr
    html.write_text(proc.stdout)
    # Self-contained: no URL of any kind to fetch.
    assert not re.search(r'(src|href)=|https?://|@import|url\(', proc.stdout)

    dom = dump_dom(tmp_path, html)
    pages = [attributes(m) for m in PAGE_ELEMENT.findall(dom)]
    expected = readelf_writable_file_pages(big)
    assert [int(p["data-page"], 16) for p in pages] == expected
    per_page = readelf_relocations_per_page(big)
    assert {int(p["data-page"], 16): int(p["data-relocations"]) for p in pages
            if p["data-relocations"] != "0"} == per_page
    assert any(p["data-relocations"] == "0" for p in pages)  # `plain` has clean pages

    # Click the page with most relocations: its symbols are listed.
    busiest = max(per_page, key=per_page.__getitem__)
    dom = dump_dom(tmp_path, html, f'document.querySelector(\'.page[data-page="0x{busiest:x}"]\')'
                                   ".click();")
    selected = re.search(r'<div class="selected-page">([^<]*)</div>', dom)
    assert selected and f"page 0x{busiest:x}: {per_page[busiest]} relocations" in selected[1]
    listed = re.findall(r'<li class="page-symbol">([^ <]+)', dom)
    nm = subprocess.run(["nm", "-S", str(big)], capture_output=True, text=True,
                        check=True).stdout
    on_page = set()
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 4 and f[3].startswith(("table", "late", "plain")):
            start, size = int(f[0], 16), int(f[1], 16)
            if start < busiest + PAGE and start + size > busiest:
                on_page.add(f[3])
    assert on_page and on_page <= set(listed), (on_page, listed)

    # Sort the table by relocations (a click on the header): descending numbers.
    dom = dump_dom(tmp_path, html, "document.querySelectorAll('table.symbols th')[4].click();")
    body = dom[dom.index('<table class="symbols"'):]
    values = [int(v) for v in re.findall(r'<td class="num" data-value="(\d+)">\d+</td>'
                                         r'<td class="num" data-value="\d+">\d+</td><td>', body)]
    assert values and values == sorted(values, reverse=True)

    shot = tmp_path / "map.png"
    proc = chromium(tmp_path, html, "--window-size=1100,900", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000, proc.stderr[-2000:]


def test_diff_marks_pages_that_became_dirty(tmp_path: Path, big: Path) -> None:
    clean = build_library(tmp_path / "old", "pagemap",
                          "char plain[8 * 4096] = {1};\nconst char *late0[] = {\"p\"};\n")
    proc = run_cli("diff", "--format", "html", str(clean), str(big))
    assert proc.returncode == 0, proc.stderr
    html = tmp_path / "diff.html"
    html.write_text(proc.stdout)
    pages = [attributes(m) for m in PAGE_ELEMENT.findall(dump_dom(tmp_path, html))]
    old = set(readelf_relocations_per_page(clean))
    new = set(readelf_relocations_per_page(big))
    dirty = {int(p["data-page"], 16) for p in pages if p.get("data-change") == "dirty"}
    assert dirty == new - old and dirty
    cleaned = {int(p["data-page"], 16) for p in pages if p.get("data-change") == "clean"}
    assert cleaned == {a for a in old - new if a in {int(p["data-page"], 16) for p in pages}}


def test_check_page_map_shows_the_verdict(tmp_path: Path) -> None:
    lib = build_library(tmp_path, "tables", fixture("pointer_tables.c"))
    proc = run_cli("check", "--format", "html", str(lib), "--baseline-file",
                   str(tmp_path / "none.json"))
    assert proc.returncode == 1
    assert "no baseline entry for libtables.so" in proc.stdout
    assert proc.stdout.count('<button class="page"') == len(readelf_writable_file_pages(lib))
