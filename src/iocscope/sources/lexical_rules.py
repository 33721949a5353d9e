"""Name-shape rules of the lexical source: each returns the findings it makes.

Points are on one scale for all rules, brand rules included. The source adds them
up and calls a name suspicious at ``SUSPICIOUS_AT`` points.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from iocscope.sources.lexical_glyphs import (
    CONFUSABLE_SCRIPTS,
    CONFUSABLES,
    decode_label,
    decode_label_lenient,
    letter_scripts,
)

SUSPICIOUS_AT = 40

MAX_HOST_LENGTH = 100
MAX_SUBDOMAIN_DEPTH = 5

# A hand-picked list, and a weak signal on its own. zip and mov also read as file
# names in a message.
SUSPICIOUS_TLDS = frozenset(
    {"zip", "mov", "top", "xyz", "tk", "gq", "ml", "cf", "ga", "icu", "cam", "rest"}
)


@dataclass(frozen=True)
class Finding:
    """One rule that fired: its name, its points and what it saw."""

    rule: str
    points: int
    detail: str
    tag: str

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "points": self.points, "detail": self.detail}


@dataclass(frozen=True)
class Name:
    """A host split for the rules: A-labels as sent, and their Unicode forms."""

    host: str
    labels: tuple[str, ...]
    unicode_labels: tuple[str, ...]
    registered_domain: str | None
    # Labels left of the registered domain, outermost first.
    sub_labels: tuple[str, ...]

    @property
    def registered_label(self) -> str | None:
        """Return the registered domain's own label: ``bbc`` in ``bbc.co.uk``."""
        if self.registered_domain is None:
            return None
        return self.registered_domain.split(".")[0]

    @property
    def tld(self) -> str:
        return self.labels[-1]


def make_name(host: str, registered_domain: str | None) -> Name:
    labels = tuple(host.lower().rstrip(".").split("."))
    unicode_labels = tuple(decode_label_lenient(label) for label in labels)
    depth = len(labels) - len(registered_domain.split(".")) if registered_domain else 0
    return Name(
        host=".".join(labels),
        labels=labels,
        unicode_labels=unicode_labels,
        registered_domain=registered_domain,
        sub_labels=labels[: max(depth, 0)],
    )


def ip_literal_host(host: str) -> Finding | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    detail = f"URL host is the IP address {address}"
    return Finding("ip_literal_host", 30, detail, "lexical:ip-host")


def userinfo(url: str) -> Finding | None:
    """Flag ``user@host`` URLs, which show a trusted name before the real host."""
    try:
        username = urlsplit(url).username
    except ValueError:
        return None
    if not username:
        return None
    detail = f"URL carries user info {username!r} before the host"
    return Finding("userinfo", 25, detail, "lexical:userinfo")


def punycode(name: Name) -> list[Finding]:
    findings: list[Finding] = []
    for label in name.labels:
        if not label.startswith("xn--"):
            continue
        try:
            text = decode_label(label)
        except idna.IDNAError as exc:
            detail = f"{label} is not a valid IDNA 2008 label: {exc}"
            findings.append(Finding("invalid_idna", 20, detail, "lexical:invalid-idna"))
            continue
        detail = f"{label} is the IDN {text!r}"
        findings.append(Finding("punycode", 10, detail, "lexical:punycode"))
    return findings


def scripts(name: Name) -> list[Finding]:
    findings: list[Finding] = []
    for label in name.unicode_labels:
        if label.isascii():
            continue
        mixed = sorted(letter_scripts(label) & CONFUSABLE_SCRIPTS)
        if len(mixed) > 1:
            detail = f"{label!r} mixes {' and '.join(mixed)} letters"
            findings.append(Finding("mixed_script", 40, detail, "lexical:mixed-script"))
        confusable = _confusable(label)
        if confusable is not None:
            findings.append(confusable)
    return findings


def _confusable(label: str) -> Finding | None:
    """Flag a label whose non-ASCII letters all look like ASCII letters."""
    foreign = sorted({char for char in label if not char.isascii()})
    if not foreign or any(char not in CONFUSABLES for char in foreign):
        return None
    swaps = ", ".join(f"{char!r} for {CONFUSABLES[char]!r}" for char in foreign)
    detail = f"{label!r} reads as ASCII: {swaps}"
    return Finding("confusable", 30, detail, "lexical:confusable")


def structure(name: Name) -> list[Finding]:
    findings: list[Finding] = []
    if len(name.host) > MAX_HOST_LENGTH:
        detail = f"host is {len(name.host)} characters long"
        findings.append(Finding("long_name", 15, detail, "lexical:long-name"))
    if len(name.sub_labels) > MAX_SUBDOMAIN_DEPTH:
        detail = f"{len(name.sub_labels)} labels below {name.registered_domain}"
        findings.append(Finding("deep_nesting", 15, detail, "lexical:deep-nesting"))
    if name.tld in SUSPICIOUS_TLDS:
        detail = f"TLD .{name.tld} is on the suspicious-TLD list"
        findings.append(Finding("suspicious_tld", 10, detail, "lexical:suspicious-tld"))
    return findings
