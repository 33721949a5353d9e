"""Undo the common ways analysts defang indicators so they cannot be clicked."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

# A dot, colon, slash, "://" or at-sign wrapped in [], () or {}, with optional spaces
# inside and around: "evil[.]example", "user (at) example", "http[://]host".
# Leading spaces only match from the start of a run, which keeps a long run of
# spaces linear to scan.
_WRAPPED = r"\s*(?P<{name}>\.|dot|://|:|/|@|at)\s*"
_BRACKETED = (
    r"(?<![ \t])[ \t]*(?:"
    + r"\["
    + _WRAPPED.format(name="square")
    + r"\]|\("
    + _WRAPPED.format(name="round")
    + r"\)|\{"
    + _WRAPPED.format(name="curly")
    + r"\})[ \t]*"
)
_ESCAPED_DOT = r"(?P<escaped_dot>\\\.)"
# Only before a ":", plain or bracketed, so a word that merely starts with "hxxp"
# is left alone.
_SCHEME = r"\b(?P<scheme>hxxp|fxp)(?P<secure>s?)(?=[\[({]?\s*:)"
# "evil dot example", "user at example dot com": a bare word between two tokens.
_SPACED_WORD = r"(?<=\S)[ \t]+(?P<word>dot|at)[ \t]+(?=\S)"

_DEFANGED = re.compile(f"{_BRACKETED}|{_ESCAPED_DOT}|{_SCHEME}", re.IGNORECASE)
_DEFANGED_OR_SPACED = re.compile(
    f"{_BRACKETED}|{_ESCAPED_DOT}|{_SCHEME}|{_SPACED_WORD}", re.IGNORECASE
)

_TOKEN_VALUES = {".": ".", "dot": ".", ":": ":", "://": "://", "/": "/"}
_SCHEMES = {"hxxp": "http", "fxp": "ftp"}


@dataclass
class OffsetMap:
    """Maps spans of refanged text back to the spans of the original text."""

    # One entry per replacement: start and end in the refanged text, then in the
    # original text.
    new_starts: list[int] = field(default_factory=list)
    segments: list[tuple[int, int, int, int]] = field(default_factory=list)

    def add(self, new_start: int, new_end: int, old_start: int, old_end: int) -> None:
        self.new_starts.append(new_start)
        self.segments.append((new_start, new_end, old_start, old_end))

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Return the original span whose refanged form is text[start:end]."""
        return self._original_start(start), self._original_end(end)

    def _original_start(self, position: int) -> int:
        index = bisect.bisect_right(self.new_starts, position) - 1
        if index < 0:
            return position
        _, new_end, old_start, old_end = self.segments[index]
        if position < new_end:
            return old_start
        return old_end + position - new_end

    def _original_end(self, position: int) -> int:
        index = bisect.bisect_left(self.new_starts, position) - 1
        if index < 0:
            return position
        _, new_end, _, old_end = self.segments[index]
        if position <= new_end:
            return old_end
        return old_end + position - new_end


def refang(text: str, *, spaced_words: bool = True) -> str:
    """Rewrite defanged dots, colons, slashes, at-signs and schemes to their plain form.

    Handles ``[.]``, ``(.)``, ``{.}``, ``[dot]``, ``\\.``, ``[:]``, ``[://]``,
    ``[/]``, ``[@]``, ``[at]``, ``(at)``, and ``hxxp``/``hxxps``/``fxp`` schemes in any
    case (``HXXPS://`` becomes ``https://``). Letters "at" inside a word never become
    an at-sign. With ``spaced_words``, a bare `` dot `` or `` at `` between two tokens
    also counts; in prose these are ordinary words, so extraction turns it off.
    """
    return refang_with_offsets(text, spaced_words=spaced_words)[0]


def refang_with_offsets(text: str, *, spaced_words: bool) -> tuple[str, OffsetMap]:
    """Refang text and also return how to map refanged spans to original ones."""
    pattern = _DEFANGED_OR_SPACED if spaced_words else _DEFANGED
    pieces: list[str] = []
    offsets = OffsetMap()
    new_length = 0
    previous_end = 0
    for match in pattern.finditer(text):
        unchanged = text[previous_end : match.start()]
        pieces.append(unchanged)
        new_length += len(unchanged)
        replacement = _replacement(match)
        pieces.append(replacement)
        offsets.add(new_length, new_length + len(replacement), *match.span())
        new_length += len(replacement)
        previous_end = match.end()
    pieces.append(text[previous_end:])
    return "".join(pieces), offsets


def _replacement(match: re.Match[str]) -> str:
    if match["scheme"]:
        return _SCHEMES[match["scheme"].lower()] + match["secure"].lower()
    if match["escaped_dot"]:
        return "."
    word = match.groupdict().get("word")
    if word:
        return "." if word.lower() == "dot" else "@"
    token = match["square"] or match["round"] or match["curly"]
    return _TOKEN_VALUES.get(token.lower(), "@")
