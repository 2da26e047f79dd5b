"""Vietnamese text in one form: Unicode NFC, whatever keyboard or file it came from.

"Sở Y tế" typed in decomposed form (NFD: o + combining horn + combining hook ...) looks
the same on screen as the precomposed form but compares unequal. Everything a person
types — inventory files, CLI arguments, queries — goes through ``nfc`` before it is
compared or stored.
"""

from __future__ import annotations

import unicodedata


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
