"""Trimming, invisible-character checks and value display for error messages."""

from __future__ import annotations

import re
import unicodedata

from iocscope.errors import InvalidObservable

# Zero-width space, non-joiner and joiner, word joiner, and the byte order mark,
# plus the direction marks and embeddings that copying from right-to-left text
# adds (LRM, RLM, LRE..RLO, LRI..PDI) and the Mongolian vowel separator.
# Python's str.isspace() is False for these, so they are listed by hand.
ZERO_WIDTH = (
    "\u200b\u200c\u200d\u2060\ufeff"
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2066\u2067\u2068\u2069\u180e"
)

_OUTER_BLANKS = re.compile(rf"^[\s{ZERO_WIDTH}]+|[\s{ZERO_WIDTH}]+$")

# Maximum length of a value, in characters. Long tracking URLs fit, but pasted
# documents do not.
MAX_INPUT_CHARS = 8192

_SHOWN_CHARS = 80


def show(value: str) -> str:
    """Quote a value for a message, escaping invisible characters and cutting it."""
    if len(value) > _SHOWN_CHARS:
        value = value[:_SHOWN_CHARS] + "..."
    return repr(value)


def trim(raw: str) -> str:
    """Strip outer whitespace, zero-width characters and byte order marks."""
    return _OUTER_BLANKS.sub("", raw)


def reject_invisible(value: str) -> None:
    """Raise InvalidObservable if whitespace or a control or format character is inside.

    A space inside a value is never guessed away: ``44d88612 fea8...`` could be one
    hash with a stray space or two values pasted together.
    """
    for position, char in enumerate(value):
        if char.isspace():
            raise InvalidObservable(
                f"{show(value)} contains whitespace at position {position}: submit "
                "one value without spaces (percent-encode a space in a URL as %20)",
                value=value,
            )
        if unicodedata.category(char) in ("Cc", "Cf", "Cs"):
            raise InvalidObservable(
                f"{show(value)} contains the invisible or control character "
                f"U+{ord(char):04X} at position {position}: remove it",
                value=value,
            )


def reject_oversized(value: str) -> None:
    if len(value) > MAX_INPUT_CHARS:
        raise InvalidObservable(
            f"value of {len(value)} characters is longer than the maximum of "
            f"{MAX_INPUT_CHARS}: submit a single observable",
            value=value,
        )
