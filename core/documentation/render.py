"""Rendering the documentation to Markdown (for diffs in a repository) and to one self-contained HTML file.

Every piece of text is escaped for its format: user text is shown, never interpreted. The HTML loads
nothing from anywhere: its style is inline and its charts are PNG data URIs.
"""

from __future__ import annotations

import base64
import html
import re
from typing import TYPE_CHECKING

from core.documentation import charts, outline
from core.documentation.blocks import Chart, Facts, Outline, Para, Table

if TYPE_CHECKING:
    from core.documentation.facts import ModelDocumentation


def render(doc: ModelDocumentation, fmt: str) -> bytes:
    """The document in one format: md, html or pdf."""
    laid_out = outline.build(doc)
    if fmt == "md":
        return markdown(laid_out).encode("utf-8")
    if fmt == "html":
        return html_page(laid_out).encode("utf-8")
    if fmt == "pdf":
        from core.documentation import pdf

        return pdf.pdf(laid_out)
    raise ValueError(f"unknown document format {fmt!r}")


# --- Markdown -----------------------------------------------------------------------------------

_MD_INLINE = re.compile(r"([\\`*\[\]<>|~])")
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# What makes a line a heading, quote, list item or rule when it starts a line (">" is escaped everywhere).
_MD_BLOCK_START = re.compile(r"^(#|[-+*](?=\s|$)|-(?=-)|\d+(?=[.)](?:\s|$)))")


def md_text(text: str) -> str:
    """Plain text safe inside a Markdown line or table cell: markup characters escaped, newlines folded."""
    text = " ".join(str(text).split())
    text = _MD_INLINE.sub(r"\\\1", text)
    return _MD_UNDERSCORE.sub(r"\\_", text)


def md_line(text: str) -> str:
    """Plain text that starts a line of its own: also never a heading, list item or rule."""
    text = md_text(text)
    match = _MD_BLOCK_START.match(text)
    if match is None:
        return text
    if match.group(1)[0].isdigit():
        end = match.end()
        return text[:end] + "\\" + text[end:]
    return "\\" + text


def _md_table(t: Table) -> list[str]:
    lines = [f"_{md_text(t.caption)}_", ""] if t.caption else []
    lines.append("| " + " | ".join(md_text(c) for c in t.columns) + " |")
    lines.append("|" + "|".join("---" for _ in t.columns) + "|")
    lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in t.rows]
    return lines


def markdown(laid_out: Outline) -> str:
    """The outline as CommonMark with pipe tables; charts are named, their data is in the tables."""
    out = [f"# {md_text(laid_out.title)}", "", md_text(laid_out.subtitle), ""]
    for section in laid_out.sections:
        out += [f"{'#' * section.level} {md_text(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, Para):
                prefix = {"note": "> ", "warning": "> **Warning:** "}.get(block.tone, "")
                out.append(prefix + (md_text(block.text) if prefix else md_line(block.text)))
            elif isinstance(block, Facts):
                out += [f"- **{md_text(k)}:** {md_text(v)}" for k, v in block.rows]
            elif isinstance(block, Table):
                out += _md_table(block)
            elif isinstance(block, Chart):
                out.append(f"_Chart: {md_text(block.title)} (drawn in the HTML and PDF editions)._")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; color: #1d2330;
       max-width: 1000px; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 2px solid #e3e7ee;
     padding-bottom: .2rem; } .subtitle { color: #5b6475; font-size: .92rem; word-break: break-all; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .86rem; width: 100%; }
th, td { border: 1px solid #d9dee7; padding: .3rem .5rem; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; } th { background: #f2f4f8; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; color: #3a4252; }
dl.facts { display: grid; grid-template-columns: 14rem 1fr; gap: .2rem 1rem; margin: .6rem 0 1rem; }
dl.facts dt { font-weight: 600; color: #3a4252; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
p.note { color: #5b6475; border-left: 3px solid #c8cfdb; padding-left: .7rem; }
p.warning { color: #8a1c1c; border-left: 3px solid #d62728; padding-left: .7rem; background: #fdf3f3; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; height: auto; }
figcaption { color: #5b6475; font-size: .85rem; } nav ol { columns: 2; font-size: .92rem; }
"""


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _html_block(block: object) -> str:
    if isinstance(block, Para):
        cls = f' class="{block.tone}"' if block.tone else ""
        return f"<p{cls}>{_h(block.text)}</p>"
    if isinstance(block, Facts):
        items = "".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in block.rows)
        return f'<dl class="facts">{items}</dl>'
    if isinstance(block, Table):
        caption = f"<caption>{_h(block.caption)}</caption>" if block.caption else ""
        head = "".join(f"<th>{_h(c)}</th>" for c in block.columns)
        body = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Chart):
        png = charts.to_png(block.spec, scale=2.0)
        width = int.from_bytes(png[16:20], "big") // 2  # drawn at twice the size, shown at its natural one
        data = base64.b64encode(png).decode("ascii")
        return (f'<figure><img alt="{_h(block.title)}" width="{width}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_h(block.title)}</figcaption></figure>")
    raise TypeError(f"unknown block {type(block).__name__}")


def html_page(laid_out: Outline) -> str:
    """One self-contained HTML file: inline style, charts as data URIs, no script, no external reference."""
    toc = "".join(f'<li><a href="#section-{i}">{_h(s.title)}</a></li>' for i, s in enumerate(laid_out.sections, 1))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may be fetched: no network, no scripts, images only from the document itself.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>{_h(laid_out.title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_h(laid_out.title)}</h1><p class=\"subtitle\">{_h(laid_out.subtitle)}</p></header>",
        f"<nav><ol>{toc}</ol></nav>",
    ]
    for i, section in enumerate(laid_out.sections, 1):
        parts.append(f'<section id="section-{i}"><h{section.level}>{_h(section.title)}</h{section.level}>')
        parts += [_html_block(b) for b in section.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
