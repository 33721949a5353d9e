"""Brand rules of the lexical source: lookalikes of a brand, and a brand inside
another owner's domain.

Brands come from ``iocscope/data/brands.txt``. A name under a domain that a listed
brand owns is never flagged by these rules. A lookalike is a label that folds to a
brand's spelling (``paypa1``, ``rnicrosoft``, a Cyrillic ``a`` for the Latin one).
A label one keystroke from a brand of 6 letters or more is a lookalike too, if it
keeps the first letter. The keystroke is a missing, doubled or swapped letter, or
a neighbouring key on a QWERTY keyboard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files

from iocscope.sources.lexical_glyphs import fold_lookalikes, to_latin
from iocscope.sources.lexical_rules import Finding, Name

MIN_LOOKALIKE_LENGTH = 4
MIN_TYPO_LENGTH = 6
MIN_SUBSTRING_LENGTH = 6
LURE_BONUS = 15

# Words that phishing names put next to a brand to look like a sign-in page.
LURE_WORDS = (
    "login", "logon", "signin", "verify", "secure", "account", "update", "billing",
    "wallet", "support", "confirm", "unlock", "recover", "auth", "webscr",
    "password", "invoice", "payment", "refund", "suspend", "alert",
)  # fmt: skip

_KEY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_NON_LETTERS = re.compile(r"[^a-z]+")


@dataclass(frozen=True)
class Brand:
    name: str
    domains: frozenset[str]


class BrandIndex:
    """Brands with their lookalike spellings computed once, at load time."""

    def __init__(self, brands: Iterable[Brand]) -> None:
        self.brands = tuple(brands)
        self.names = frozenset(brand.name for brand in self.brands)
        self.owner = {d: brand.name for brand in self.brands for d in brand.domains}
        self._folded = {
            fold_lookalikes(brand.name): brand.name
            for brand in self.brands
            if len(brand.name) >= MIN_LOOKALIKE_LENGTH
        }
        self._typos = {
            typo: brand.name
            for brand in self.brands
            if len(brand.name) >= MIN_TYPO_LENGTH
            for typo in typo_variants(brand.name)
            if typo not in self.names
        }

    def owns(self, registered_domain: str) -> bool:
        return registered_domain in self.owner

    def homoglyph_of(self, piece: str) -> str | None:
        if len(piece) < MIN_LOOKALIKE_LENGTH:
            return None
        brand = self._folded.get(fold_lookalikes(piece))
        return None if brand == piece else brand

    def typo_of(self, piece: str) -> str | None:
        return self._typos.get(piece)


def parse_brands(text: str) -> BrandIndex:
    """Parse one brand a line: its name, then the registered domains it owns."""
    brands: list[Brand] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            brands.append(Brand(fields[0], frozenset(fields[1:])))
    return BrandIndex(brands)


def bundled_brands() -> BrandIndex:
    resource = files("iocscope").joinpath("data", "brands.txt")
    return parse_brands(resource.read_text(encoding="utf-8"))


def typo_variants(brand: str) -> set[str]:
    """Return the spellings one keystroke from ``brand`` that keep its first letter."""
    variants: set[str] = set()
    for i in range(1, len(brand)):
        variants.add(brand[:i] + brand[i + 1 :])
        variants.add(brand[:i] + brand[i] + brand[i:])
        variants.update(brand[:i] + key + brand[i + 1 :] for key in _near(brand[i]))
        variants.update(brand[:i] + key + brand[i:] for key in _near(brand[i]))
        if i < len(brand) - 1:
            variants.add(brand[:i] + brand[i + 1] + brand[i] + brand[i + 2 :])
    variants.discard(brand)
    return variants


def _near(key: str) -> set[str]:
    """Return the keys around ``key`` on a QWERTY keyboard."""
    for row, keys in enumerate(_KEY_ROWS):
        col = keys.find(key)
        if col >= 0:
            return _keys_at(row, col)
    return set()


def _keys_at(row: int, col: int) -> set[str]:
    # Each row sits half a key to the right of the row above it.
    spots = (
        (row, col - 1),
        (row, col + 1),
        (row - 1, col),
        (row - 1, col + 1),
        (row + 1, col - 1),
        (row + 1, col),
    )
    return {
        _KEY_ROWS[r][c]
        for r, c in spots
        if 0 <= r < len(_KEY_ROWS) and 0 <= c < len(_KEY_ROWS[r])
    }


def brand_findings(name: Name, index: BrandIndex) -> list[Finding]:
    """Return the strongest brand finding for each brand that the name imitates."""
    if name.registered_domain is None or index.owns(name.registered_domain):
        return []
    best: dict[str, Finding] = {}
    for brand, finding in _candidates(name, index):
        if brand not in best or finding.points > best[brand].points:
            best[brand] = finding
    return list(best.values())


def _candidates(name: Name, index: BrandIndex) -> Iterator[tuple[str, Finding]]:
    depth = len(name.sub_labels)
    texts = name.unicode_labels[: depth + 1]
    own = ".".join(to_latin(text) for text in texts)
    for position, text in enumerate(texts):
        yield from _lookalikes(text, index)
        for brand, finding in _embedded(text, index, position == depth):
            yield brand, _with_lure(finding, brand, own)
    yield from _domain_in_subdomain(name, index)


def _lookalikes(text: str, index: BrandIndex) -> Iterator[tuple[str, Finding]]:
    pieces = {text, *text.split("-")}
    for piece in pieces:
        brand = index.homoglyph_of(piece)
        if brand is not None:
            detail = f"{piece!r} reads as {brand}"
            tag = f"lexical:lookalike:{brand}"
            yield brand, Finding("lookalike_homoglyph", 50, detail, tag)
            continue
        brand = index.typo_of(to_latin(piece))
        if brand is not None:
            detail = f"{piece!r} is one keystroke from {brand}"
            tag = f"lexical:lookalike:{brand}"
            yield brand, Finding("lookalike_typo", 40, detail, tag)


def _embedded(
    text: str, index: BrandIndex, registered: bool
) -> Iterator[tuple[str, Finding]]:
    latin = to_latin(text)
    tokens = set(_NON_LETTERS.split(latin))
    for brand in index.names:
        if latin == brand:
            # The brand's name under another suffix (google.de) is left alone.
            if not registered:
                detail = f"subdomain label {text!r} is the brand {brand}"
                yield brand, _brand_finding("brand_in_subdomain", 25, detail, brand)
        elif brand in tokens:
            detail = f"{text!r} contains the brand {brand}"
            yield brand, _brand_finding("brand_embedded", 30, detail, brand)
        elif len(brand) >= MIN_SUBSTRING_LENGTH and brand in latin:
            detail = f"{text!r} contains the brand {brand}"
            yield brand, _brand_finding("brand_embedded", 25, detail, brand)


def _domain_in_subdomain(
    name: Name, index: BrandIndex
) -> Iterator[tuple[str, Finding]]:
    depth = len(name.sub_labels)
    subdomain = ".".join(to_latin(text) for text in name.unicode_labels[:depth])
    for domain, brand in index.owner.items():
        if f".{domain}." in f".{subdomain}.":
            detail = f"brand domain {domain} sits in front of {name.registered_domain}"
            yield brand, _brand_finding("brand_domain_in_subdomain", 45, detail, brand)


def _brand_finding(rule: str, points: int, detail: str, brand: str) -> Finding:
    return Finding(rule, points, detail, f"lexical:brand:{brand}")


def _with_lure(finding: Finding, brand: str, own: str) -> Finding:
    rest = own.replace(brand, " ", 1)
    lure = next((word for word in LURE_WORDS if word in rest), None)
    if lure is None:
        return finding
    detail = f"{finding.detail}, next to the lure word {lure!r}"
    points = finding.points + LURE_BONUS
    return Finding(finding.rule, points, detail, finding.tag)
