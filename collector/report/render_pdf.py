"""PDF: an HTML page (``html``) laid out by WeasyPrint, for sending and printing as is.

HTML and CSS rather than drawing a PDF by hand: the layout (A4 landscape, repeated table
headers, page numbers) is declared, tables break across pages by themselves, and the
font is DejaVu Sans / Times-like serif from the system, which carry every Vietnamese
letter (ơ, ư, ạ, ễ ...). Text is escaped; nothing in the inventory can inject markup.
"""

from __future__ import annotations

from html import escape

from collector.report.layout import Document, Table

CSS = """
@page { size: A4 landscape; margin: 1.6cm 1.5cm 1.8cm 1.5cm;
        @bottom-right { content: counter(page) " / " counter(pages); font-size: 8pt; } }
body { font-family: "DejaVu Serif", "Times New Roman", serif; font-size: 9.5pt; }
h1 { font-size: 14pt; text-align: center; margin: 0 0 2pt 0; }
.subtitle { text-align: center; font-style: italic; margin: 0 0 10pt 0; }
h2 { font-size: 11.5pt; margin: 14pt 0 4pt 0; border-bottom: 0.5pt solid #444;
     break-after: avoid; }
ul.front { list-style: none; padding: 0; margin: 0 0 6pt 0; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0 8pt 0; }
th, td { border: 0.5pt solid #777; padding: 2pt 4pt; vertical-align: top; }
th { background: #e8e8e8; text-align: left; }
thead { display: table-header-group; }
td.n { text-align: right; }
p { margin: 2pt 0; }
.caption { font-weight: bold; margin-top: 6pt; break-after: avoid; }
"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{v}</td>' if isinstance(v, int)
                         else f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
        for row in table.rows)
    caption = f'<p class="caption">{escape(table.caption)}</p>' if table.caption else ""
    return f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html(doc: Document, lang: str) -> str:
    parts = [f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">',
             f"<title>{escape(doc.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{escape(doc.title)}</h1>", f'<p class="subtitle">{escape(doc.subtitle)}</p>',
             '<ul class="front">' + "".join(f"<li>{escape(x)}</li>" for x in doc.front) + "</ul>"]
    for section in doc.sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
        parts += [_table(t) for t in section.tables]
    parts.append("</body></html>")
    return "".join(parts)


def render(doc: Document, lang: str) -> bytes:
    from weasyprint import HTML  # imported here: it loads Pango, only for PDFs

    pdf = HTML(string=html(doc, lang)).write_pdf()
    assert pdf is not None  # write_pdf returns the bytes when given no target
    return bytes(pdf)
