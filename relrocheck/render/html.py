"""An HTML page map: one self-contained file that shows where the loader writes.

Each writable PT_LOAD segment is a grid of its file-backed pages; every page is one element
with `data-page` (its address) and `data-relocations` (the relocation targets on it),
coloured by that count. Selecting a page lists the symbols whose bytes lie on it; the symbol
table sorts by any column. The diff view marks pages that became dirty (`data-change="dirty"`)
or clean (`"clean"`). No network, no external script, style sheet or font: the page works
from a CI artifact opened offline.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any, Iterable, Optional, Sequence

from relrocheck.model import Library, labelled
from relrocheck.record import field, record
from relrocheck.text import printable


def _text(s: str) -> str:
    """A name or path for the page: printable (it may come from a file name), HTML-escaped."""
    return escape(printable(s))


@record
class MapEntry:
    """One library on the page, with what else the view shows about it."""

    library: Library
    old: Optional[Library] = None  # the diff view: the old build, when it has page addresses
    messages: Sequence[str] = field(default=())  # violations or notes, one line each
    status: str = ""  # a verdict shown beside the name (check), or ""


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fff}
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
h3{font-size:1em;margin:1em 0 .3em}code,td.num,.addr{font-family:ui-monospace,monospace}
.grid{display:flex;flex-wrap:wrap;gap:3px;max-width:60em}
.page{width:2.2em;height:2.2em;border:1px solid #888;border-radius:3px;cursor:pointer;
 font-size:11px;padding:0;color:#000;background:#eee}
.page[aria-pressed=true]{outline:3px solid #06c;outline-offset:1px}
.page[data-change=dirty]{border:3px solid #c00}.page[data-change=clean]{border:3px dashed #080}
.page[data-zero-filled]{background-image:repeating-linear-gradient(45deg,transparent 0 4px,
 rgba(0,0,0,.15) 4px 6px)}
.legend span{display:inline-block;padding:0 .5em;margin-right:.5em;border:1px solid #888}
.selected{margin:.6em 0;padding:.5em;background:#f5f5f7;min-height:1.5em}
table{border-collapse:collapse;margin-top:.5em}th,td{padding:2px 8px;text-align:left}
th{cursor:pointer;background:#f0f0f0;user-select:none}tr:nth-child(even) td{background:#fafafa}
td.num{text-align:right}.fail{color:#b00}.ok{color:#070}ul.messages{color:#b00}
"""

# Sorting, page selection: a few lines of inline script, no library.
_SCRIPT = """
(function(){
function hex(n){return '0x'+n.toString(16);}
document.querySelectorAll('section.library').forEach(function(sec){
  var data=JSON.parse(sec.querySelector('script.symbols').textContent);
  var size=data.page_size, out=sec.querySelector('.selected');
  sec.querySelectorAll('.page').forEach(function(el){
    el.addEventListener('click',function(){
      sec.querySelectorAll('.page[aria-pressed=true]').forEach(function(p){
        p.setAttribute('aria-pressed','false');});
      el.setAttribute('aria-pressed','true');
      var start=parseInt(el.dataset.page,16), end=start+size;
      var hits=data.symbols.filter(function(s){
        return s.size>0 ? s.address<end && s.address+s.size>start
                        : s.address>=start && s.address<end;});
      out.textContent='';
      var head=document.createElement('div');
      head.className='selected-page';
      head.textContent='page '+hex(start)+': '+el.dataset.relocations+' relocations, '+
        hits.length+' symbol(s)';
      out.appendChild(head);
      var ul=document.createElement('ul');
      hits.forEach(function(s){var li=document.createElement('li');
        li.className='page-symbol';
        li.textContent=s.label+' ('+s.section+', '+s.size+' bytes, '+s.relocations+
          ' relocations'+(s.hint?', '+s.hint:'')+')';ul.appendChild(li);});
      out.appendChild(ul);
    });
  });
  sec.querySelectorAll('table.symbols th').forEach(function(th,col){
    th.addEventListener('click',function(){
      var body=th.closest('table').tBodies[0], rows=Array.prototype.slice.call(body.rows);
      var down=th.getAttribute('aria-sort')!=='descending';
      th.closest('tr').querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',down?'descending':'ascending');
      rows.sort(function(a,b){
        var x=a.cells[col].dataset.value, y=b.cells[col].dataset.value;
        var c=(x!==undefined&&y!==undefined)?Number(x)-Number(y):
          a.cells[col].textContent.localeCompare(b.cells[col].textContent);
        return down?-c:c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
})();
"""


def _colour(count: int, most: int) -> str:
    """Grey for a clean page; yellow to red with the share of the busiest page's count."""
    if count == 0:
        return "#eeeeee"
    share = count / most if most else 1.0
    green = int(220 - 180 * share)
    return f"#ff{green:02x}{int(120 * (1 - share)):02x}"


def _json_for_script(value: Any) -> str:
    # Inside <script>, "</" would end the element: every "<" becomes \\u003c.
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _segment_pages(lib: Library) -> list[tuple[int, list[int]]]:
    """(segment address, its file-backed page addresses) for each writable PT_LOAD."""
    size = lib.pages.page_size
    out = []
    for seg in lib.segments:
        first = seg.address // size * size
        out.append((seg.address, [first + i * size for i in range(seg.file_pages)]))
    return out


def _library_section(index: int, entry: MapEntry) -> str:
    lib = entry.library
    counts = dict(zip(lib.pages.relocated_addresses, lib.pages.relocation_counts))
    if not counts:  # a model made without per-page counts: relocated, count unknown
        counts = {a: 1 for a in lib.pages.relocated_addresses}
    zero = set(lib.pages.zero_filled_addresses)
    old = set(entry.old.pages.relocated_addresses) if entry.old is not None else None
    most = max(counts.values(), default=0)
    out = [f'<section class="library" id="lib{index}" data-library="{_text(lib.name)}">',
           f"<h2>{_text(lib.name)} <small><code>{_text(lib.path)}</code></small>"
           + (f' <span class="{"fail" if "FAIL" in entry.status else "ok"}">'
              f"{_text(entry.status)}</span>" if entry.status else "") + "</h2>"]
    if entry.messages:
        out.append('<ul class="messages">' + "".join(f"<li>{_text(m)}</li>"
                                                   for m in entry.messages) + "</ul>")
    p = lib.pages
    out.append(f"<p>{p.relocated} of {p.writable_file_backed} writable file-backed pages hold "
               f"relocations ({lib.relocations.total} in all): written by the loader, private "
               f"dirty in every process. Page size {p.page_size}.</p>")
    out.append('<p class="legend"><span style="background:#eee">no relocation</span>'
               '<span style="background:#ffdc78">few</span><span style="background:#ff2800">'
               "most</span>" + ('<span style="border:3px solid #c00">became dirty</span>'
                                '<span style="border:3px dashed #080">became clean</span>'
                                if old is not None else "")
               + "<span>hatched: shared with .bss (zero-filled)</span></p>")
    for seg_address, pages in _segment_pages(lib):
        out.append(f"<h3>RW PT_LOAD 0x{seg_address:x}: {len(pages)} file page(s)</h3>")
        out.append('<div class="grid">')
        for address in pages:
            n = counts.get(address, 0)
            attrs = [f'data-page="0x{address:x}"', f'data-relocations="{n}"',
                     'aria-pressed="false"', f'style="background:{_colour(n, most)}"',
                     f'title="0x{address:x}: {n} relocation(s)"']
            if address in zero:
                attrs.append("data-zero-filled")
            if old is not None:
                if address in counts and address not in old:
                    attrs.append('data-change="dirty"')
                elif address in old and address not in counts:
                    attrs.append('data-change="clean"')
            out.append(f'<button class="page" {" ".join(attrs)}>{n or ""}</button>')
        out.append("</div>")
    out.append('<div class="selected">Select a page to list its symbols.</div>')
    out.append(_symbol_table(lib))
    symbols = [{"label": labelled(s.name, s.demangled), "section": s.section,
                "address": s.address, "size": s.size, "relocations": s.relocations,
                "hint": s.hint.kind if s.hint else None} for s in lib.symbols]
    out.append('<script type="application/json" class="symbols">'
               + _json_for_script({"page_size": p.page_size, "symbols": symbols})
               + "</script>")
    out.append("</section>")
    return "\n".join(out)


def _symbol_table(lib: Library) -> str:
    head = ("symbol", "section", "address", "bytes", "relocations", "pages", "hint", "source")
    rows = []
    for s in lib.symbols:
        if not (s.relocations or s.size):
            continue
        cells = [f"<td>{_text(labelled(s.name, s.demangled))}</td>",
                 f"<td>{_text(s.section)}</td>",
                 f'<td class="num" data-value="{s.address}">0x{s.address:x}</td>',
                 f'<td class="num" data-value="{s.size}">{s.size}</td>',
                 f'<td class="num" data-value="{s.relocations}">{s.relocations}</td>',
                 f'<td class="num" data-value="{s.pages}">{s.pages}</td>',
                 f"<td>{escape(s.hint.kind) if s.hint else ''}</td>",
                 f"<td>{_text(s.source or '')}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ('<table class="symbols"><thead><tr>'
            + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>")


def render_html(title: str, entries: Iterable[MapEntry], notes: Sequence[str] = ()) -> str:
    body = "\n".join(_library_section(i, e) for i, e in enumerate(entries))
    note_html = "".join(f"<p class=\"note\">{_text(n)}</p>" for n in notes)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>\n"
            f"<h1>{escape(title)}</h1>{note_html}\n{body}\n<script>{_SCRIPT}</script>\n"
            "</body></html>\n")
