"""Rendering the documentation to PDF with fpdf2: no browser, no outside service; charts drawn by vl-convert."""

from __future__ import annotations

import io
from pathlib import Path

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout

from core.documentation import charts
from core.documentation.blocks import Chart, Facts, Outline, Para, Table

# A Unicode TrueType font shows every character users type; without one, PDF core fonts (Latin-1) are used.
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts/dejavu",
              "/Library/Fonts", "C:/Windows/Fonts")
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
BODY_PT = 9.5
TABLE_PT = 7.5
PNG_SCALE = 2.0


def _unicode_font() -> dict[str, Path] | None:
    for folder in _FONT_DIRS:
        paths = {style: Path(folder) / name for style, name in _FONT_FILES.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


class _Pdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = footer_text
        fonts = _unicode_font()
        if fonts:
            for style, path in fonts.items():
                self.add_font("DejaVu", style=style, fname=str(path))
            self.family = "DejaVu"
            self.unicode = True
        else:
            self.family = "helvetica"
            self.unicode = False
        self.set_auto_page_break(auto=True, margin=16)
        self.set_margins(15, 15, 15)

    def text_of(self, text: object) -> str:
        text = str(text)
        return text if self.unicode else text.replace("→", "->").replace("—", "-").replace("…", "...") \
            .replace("·", "|").encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 7)
        self.set_text_color(110, 117, 130)
        self.cell(0, 5, self.text_of(f"{self.footer_text} · page {self.page_no()}/{{nb}}"), align="C")
        self.set_text_color(0, 0, 0)


def _weights(t: Table, page_width: float) -> list[float]:
    """Column widths in proportion to their longest cell and word, and never below 6 mm on the page."""
    widths = []
    for i, col in enumerate(t.columns):
        cells = [col] + [row[i] for row in t.rows if i < len(row)]
        longest = max(len(c) for c in cells)
        word = max((len(w) for c in cells for w in c.split()), default=1)
        widths.append(float(max(min(word, 24) + 2, min(longest, 40))))
    floor = sum(widths) * 6.0 / page_width
    return [max(w, floor) for w in widths]


def _table(pdf: _Pdf, t: Table) -> None:
    if pdf.will_page_break(22):  # keep a caption with the first rows of its table
        pdf.add_page()
    if t.caption:
        pdf.set_font(pdf.family, "B", BODY_PT - 0.5)
        pdf.multi_cell(0, 5, pdf.text_of(t.caption), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", TABLE_PT)
    with pdf.table(col_widths=_weights(t, pdf.epw), text_align="LEFT", line_height=3.6, padding=0.8,
                   borders_layout=TableBordersLayout.HORIZONTAL_LINES, repeat_headings=1,
                   headings_style=FontFace(emphasis="BOLD", fill_color=(236, 239, 244))) as table:
        table.row([pdf.text_of(c) for c in t.columns])
        for row in t.rows:
            table.row([pdf.text_of(c) for c in row])
    pdf.ln(3)


def _facts(pdf: _Pdf, f: Facts) -> None:
    pdf.set_font(pdf.family, "", BODY_PT - 0.5)
    with pdf.table(col_widths=(32, 68), text_align="LEFT", line_height=4.4, padding=0.6,
                   borders_layout=TableBordersLayout.NONE, first_row_as_headings=False) as table:
        for key, value in f.rows:
            row = table.row()
            row.cell(pdf.text_of(key), style=FontFace(emphasis="BOLD"))
            row.cell(pdf.text_of(value))
    pdf.ln(2)


def _para(pdf: _Pdf, p: Para) -> None:
    style = "I" if p.tone == "note" else ""
    pdf.set_font(pdf.family, style, BODY_PT)
    if p.tone == "warning":
        pdf.set_text_color(150, 30, 30)
    pdf.multi_cell(0, 5, pdf.text_of(p.text), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(1.5)


def _chart(pdf: _Pdf, c: Chart) -> None:
    png = charts.to_png(c.spec, scale=PNG_SCALE)
    # Drawn at its natural size (CSS pixels at 96 dpi), never wider than the page.
    width_px = int.from_bytes(png[16:20], "big") / PNG_SCALE
    pdf.image(io.BytesIO(png), w=min(pdf.epw, width_px * 25.4 / 96), alt_text=pdf.text_of(c.title),
              keep_aspect_ratio=True)
    pdf.ln(3)


def pdf(outline: Outline) -> bytes:
    """The outline as an A4 PDF with bookmarks per section."""
    doc = _Pdf(footer_text=outline.title)
    doc.set_title(doc.text_of(outline.title))
    doc.set_creator("Watchtower")
    doc.add_page()
    doc.set_font(doc.family, "B", 17)
    doc.multi_cell(0, 9, doc.text_of(outline.title), align="L", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(doc.family, "", 8.5)
    doc.set_text_color(90, 98, 112)
    doc.multi_cell(0, 4.5, doc.text_of(outline.subtitle), align="L", new_x="LMARGIN", new_y="NEXT")
    doc.set_text_color(0, 0, 0)
    doc.ln(4)
    for section in outline.sections:
        if doc.will_page_break(30):
            doc.add_page()
        doc.start_section(doc.text_of(section.title), level=section.level - 2)
        doc.set_font(doc.family, "B", 13)
        doc.multi_cell(0, 8, doc.text_of(section.title), align="L", new_x="LMARGIN", new_y="NEXT")
        doc.ln(1)
        for block in section.blocks:
            {Para: _para, Facts: _facts, Table: _table, Chart: _chart}[type(block)](doc, block)
        doc.ln(2)
    return bytes(doc.output())
