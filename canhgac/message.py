"""Text for people in two languages, chosen when it is shown, not when it is made.

A configuration or inventory problem is found deep in a loader that does not know
who will read it; the command that prints it does (``--lang``, ``CANHGAC_LANG``,
the locale: canhgac.lang). So a problem is a :class:`Message`: it *is* its English
text (a ``str``, so logs, exceptions and every caller that concatenates it keep
working) and it keeps its Vietnamese template and fields to render later.

Both texts sit next to each other at the place the problem is found, so a new
message cannot be added in one language only, and a reviewer reads both at once.
"""

from __future__ import annotations

from typing import Any


class Message(str):
    """English text (the ``str`` value) that can also be rendered in Vietnamese."""

    en_template: str
    vi_template: str
    fields: dict[str, Any]

    def __new__(cls, en: str, vi: str, **fields: Any) -> Message:
        obj = super().__new__(cls, _format(en, fields, "en"))
        obj.en_template = en
        obj.vi_template = vi
        obj.fields = fields
        return obj

    def render(self, lang: str) -> str:
        """The text in ``lang`` ("vi" or "en"); fields that are Messages follow the language."""
        if lang != "vi":
            return str.__str__(self)
        return _format(self.vi_template, self.fields, "vi")

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (worker processes) keep both texts
        return (_rebuild, (self.en_template, self.vi_template, self.fields))


def _rebuild(en: str, vi: str, fields: dict[str, Any]) -> Message:
    return Message(en, vi, **fields)


def _format(template: str, fields: dict[str, Any], lang: str) -> str:
    return template.format(**{k: render(v, lang) for k, v in fields.items()})


def render(text: Any, lang: str) -> Any:
    """``text`` in ``lang`` when it is a Message; anything else unchanged."""
    return text.render(lang) if isinstance(text, Message) else text


EMPTY = Message("", "")
