"""Find observables in free text such as an alert, an email or a report."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from iocscope.errors import InvalidObservable
from iocscope.models import Observable, ObservableType
from iocscope.observables.domains import has_known_tld
from iocscope.observables.parse import parse_observable
from iocscope.observables.refang import refang_with_offsets

_PATH = r"(?:[/?][^\s<>\"'`]*)?"
_URL = r"\b(?:https?|ftp)://[^\s<>\"'`]+"
_EMAIL = r"(?<![\w.!#$%&'*+=?^{|}~-])[\w.!#$%&'*+=?^{|}~-]+@(?:[\w-]+\.)+[\w-]+"
# At least two colons and one hex digit, so "::" alone is not a candidate. Times
# such as 12:30:45 are candidates, and parsing rejects them.
_IPV6 = (
    r"(?<![\w:.])(?=[0-9A-Fa-f:.]*[0-9A-Fa-f])"
    r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:/[0-9]{1,3})?"
)
_IPV4 = r"(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w.-]|\.[0-9])" + _PATH
_HASH = r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32,128}(?![0-9A-Za-z])"
# A name preceded by "/" or "\" is part of a file path, not a host.
_DOMAIN = r"(?<![\w.@/\\-])(?:[\w-]+\.)+[\w-]+" + _PATH
# Candidates in priority order: a span claimed by an earlier pattern hides later
# matches inside it, so the host of a URL is not matched again as a domain.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(_URL, re.IGNORECASE),
    re.compile(_EMAIL),
    re.compile(_IPV6),
    re.compile(_IPV4),
    re.compile(_HASH),
    re.compile(_DOMAIN),
)
_TRAILING_PUNCTUATION = ".,;!?'\""
_BRACKET_PAIRS = {")": "(", "]": "[", "}": "{"}
_HOST_TYPES = (ObservableType.URL, ObservableType.EMAIL)


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    text: str


def extract_observables(text: str) -> list[Observable]:
    """Find every ip, cidr, url, domain, email and hash in free text.

    The text is refanged first (bare `` dot `` and `` at `` words excepted). Results
    come in order of first appearance, one per canonical value, with ``input`` set
    to the text as written. Candidates that :func:`parse_observable` rejects are
    skipped. A bare domain, an email domain or a URL host without scheme counts only
    if its top-level domain is in the public suffix list (or is ``example`` or
    ``test``), which keeps ``file.txt`` and ``e.g.`` out. A domain that is also the
    host of a URL or email found in the text is not reported on its own.
    """
    refanged, offsets = refang_with_offsets(text, spaced_words=False)
    parsed: dict[str, Observable | None] = {}
    found: list[tuple[int, Observable]] = []
    for candidate in _candidates(refanged):
        start, end = offsets.original_span(candidate.start, candidate.end)
        written = text[start:end]
        if written not in parsed:
            parsed[written] = _parse_candidate(written)
        observable = parsed[written]
        if observable is not None:
            found.append((candidate.start, observable))
    found.sort(key=lambda item: item[0])
    return _deduplicate([observable for _, observable in found])


def _candidates(text: str) -> Iterator[_Candidate]:
    # One byte per character of text, set once a candidate claims that character.
    claimed = bytearray(len(text))
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            candidate = _trim_candidate(match.start(), match.group())
            start, end = candidate.start, candidate.end
            if candidate.text and claimed.find(1, start, end) == -1:
                claimed[start:end] = b"\x01" * (end - start)
                yield candidate


def _trim_candidate(start: int, text: str) -> _Candidate:
    """Drop sentence punctuation and unbalanced closing brackets from the end."""
    while text:
        last = text[-1]
        opening = _BRACKET_PAIRS.get(last)
        if last in _TRAILING_PUNCTUATION:
            text = text[:-1]
        elif last == ":" and not text.endswith("::"):
            # A colon ending a sentence, but never the "::" of an IPv6 address.
            text = text[:-1]
        elif opening is not None and text.count(opening) < text.count(last):
            text = text[:-1]
        else:
            break
    return _Candidate(start, start + len(text), text)


def _parse_candidate(text: str) -> Observable | None:
    try:
        observable = parse_observable(text)
    except InvalidObservable:
        return None
    if _needs_known_tld(observable, text) and not _has_known_tld(observable):
        return None
    return observable


def _needs_known_tld(observable: Observable, text: str) -> bool:
    if observable.type in (ObservableType.DOMAIN, ObservableType.EMAIL):
        return True
    is_schemeless = "://" not in text
    return observable.type is ObservableType.URL and is_schemeless


def _has_known_tld(observable: Observable) -> bool:
    name = observable.host or observable.value
    if observable.scope is not None:
        return True
    return has_known_tld(name)


def _deduplicate(observables: list[Observable]) -> list[Observable]:
    hosts = {o.host for o in observables if o.type in _HOST_TYPES and o.host}
    seen: set[str] = set()
    unique: list[Observable] = []
    for observable in observables:
        if observable.type is ObservableType.DOMAIN and observable.value in hosts:
            continue
        if observable.cache_key in seen:
            continue
        seen.add(observable.cache_key)
        unique.append(observable)
    return unique
