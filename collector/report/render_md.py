"""Markdown: the report as plain text a person can paste into a message or a wiki page."""

from __future__ import annotations

from collector.report.layout import Cell, Document, Table


def _cell(value: Cell) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> list[str]:
    out = [f"**{table.caption}**", ""] if table.caption else []
    out.append("| " + " | ".join(_cell(c) for c in table.columns) + " |")
    out.append("|" + "|".join(" ---: " if isinstance(table.rows[0][i], int) else " --- "
                              for i in range(len(table.columns))) + "|"
               if table.rows else "|" + "|".join(" --- " for _ in table.columns) + "|")
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return [*out, ""]


def render(doc: Document) -> bytes:
    lines = [f"# {doc.title}", "", f"*{doc.subtitle}*", ""]
    lines += [f"- {line}" for line in doc.front]
    for section in doc.sections:
        lines += ["", f"## {section.title}", ""]
        for p in section.paragraphs:
            lines += [p, ""]
        for table in section.tables:
            lines += _table(table)
    return ("\n".join(lines).rstrip() + "\n").encode("utf-8")
