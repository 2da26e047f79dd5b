"""Field kinds for the query language, derived from the kernel's field types.

A field's kind decides what ``field:value`` means (exact keyword, contains for
free text, numeric, date, IP/CIDR, boolean). Unmapped fields are keywords, as
the dynamic templates map unknown strings.
"""

from __future__ import annotations

import re

from canhgac.fields import FIELD_TYPES, FREE_TEXT

KEYWORD = "keyword"
TEXT = "text"  # free text: case-insensitive (ASCII) "contains"
LONG = "long"
DOUBLE = "double"
DATE = "date"
IP = "ip"
BOOLEAN = "boolean"

_KIND_OF_ES_TYPE = {
    "keyword": KEYWORD,
    "constant_keyword": KEYWORD,
    FREE_TEXT: TEXT,
    "long": LONG,
    "integer": LONG,
    "short": LONG,
    "byte": LONG,
    "double": DOUBLE,
    "float": DOUBLE,
    "scaled_float": DOUBLE,
    "half_float": DOUBLE,
    "date": DATE,
    "ip": IP,
    "boolean": BOOLEAN,
}

# Bare terms (no field) search this field.
DEFAULT_FIELD = "message"

FIELD_NAME = re.compile(r"^@?[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def kind_of(field: str) -> str:
    return _KIND_OF_ES_TYPE.get(FIELD_TYPES.get(field, "keyword"), KEYWORD)
