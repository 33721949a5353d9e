"""Feed entries as parsers produce them and the store keeps them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Bad lines kept with their text for the import report; the rest are only counted.
MAX_KEPT_BAD_LINES = 100


class EntryKind(StrEnum):
    """Kind of a feed entry, which decides how a lookup matches it.

    The values shared with ``ObservableType`` match exactly by canonical key.
    ``cidr`` matches by containment, ``hostname`` covers its subdomains,
    ``substring`` matches any domain that contains it, and ``asn`` has no
    observable type, so only the store API reaches it.
    """

    IP = "ip"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    EMAIL = "email"
    HOSTNAME = "hostname"
    SUBSTRING = "substring"
    ASN = "asn"


HASH_KINDS = frozenset(
    {EntryKind.MD5, EntryKind.SHA1, EntryKind.SHA256, EntryKind.SHA512}
)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One listed value in canonical form, with the feed's fields about it."""

    kind: EntryKind
    key: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line, or an item of a JSON document, that could not be used."""

    number: int
    reason: str
    text: str
    unit: str = "line"

    def __str__(self) -> str:
        shown = repr(self.text[:120])
        if self.text.strip() and self.text.strip() in self.reason:
            # Parser messages often quote the value already.
            return f"{self.unit} {self.number}: {self.reason}"
        return f"{self.unit} {self.number}: {self.reason}: {shown}"


@dataclass
class ParseReport:
    """Bad lines and feed-level metadata, filled while a parser runs."""

    bad_count: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def bad(self, number: int, reason: str, text: str, unit: str = "line") -> None:
        self.bad_count += 1
        if len(self.bad_lines) < MAX_KEPT_BAD_LINES:
            self.bad_lines.append(BadLine(number, reason, text, unit))
