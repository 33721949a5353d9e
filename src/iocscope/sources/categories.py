"""Web categories from vendors (VirusTotal, urlscan, proxy vendors) mapped to verdicts.

Vendors word the same category differently ("Phishing and Other Frauds", "illegal
phishing", "malware callhome, command and control"), so each rule matches whole words
inside the category text. Only threat categories are listed: context such as "newly
registered websites" or "parked" is no verdict. A category that no rule matches
("travel", "uncategorized") maps to no verdict at all, never to clean.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from iocscope.models import Verdict


@dataclass(frozen=True)
class CategoryRule:
    # Lower-case label used in tags ("category:phishing").
    label: str
    verdict: Verdict
    # Words or phrases, matched case-insensitively on word boundaries.
    terms: tuple[str, ...]


# Order matters: the first matching rule names the category.
CATEGORY_RULES: tuple[CategoryRule, ...] = (
    CategoryRule("phishing", Verdict.MALICIOUS, ("phishing", "phish")),
    CategoryRule(
        "malware",
        Verdict.MALICIOUS,
        (
            "malware",
            "malicious",
            "known infection source",
            "infected",
            "ransomware",
            "trojan",
            "spyware",
            "keylogger",
            "exploit",
            "cryptojacking",
            "malvertising",
        ),
    ),
    CategoryRule(
        "command-and-control",
        Verdict.MALICIOUS,
        ("command and control", "c2", "c&c", "botnet", "callhome"),
    ),
    CategoryRule("spam", Verdict.MALICIOUS, ("spam", "spammer", "spammers")),
    CategoryRule("fraud", Verdict.MALICIOUS, ("fraud", "frauds", "scam", "scams")),
    CategoryRule("compromised", Verdict.MALICIOUS, ("compromised", "hacked")),
    CategoryRule(
        "suspicious",
        Verdict.SUSPICIOUS,
        ("suspicious", "potentially unwanted", "pua", "adware", "grayware"),
    ),
)


@dataclass(frozen=True)
class CategoryMatch:
    category: str
    label: str
    verdict: Verdict


def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    # "anti-malware" and "antispam" name security products, not threats.
    alternatives = "|".join(re.escape(term) for term in terms)
    # Vendors name categories in the plural as often as not ("Botnets").
    return re.compile(rf"(?<!\w)(?<!anti )(?:{alternatives})(?:s|es)?(?!\w)")


def _normalize(category: str) -> str:
    """Lower-case ``category`` and turn hyphens, underscores and slashes into spaces."""
    return re.sub(r"[-_/]+", " ", category.lower())


_COMPILED = tuple((rule, _pattern(rule.terms)) for rule in CATEGORY_RULES)


def classify_category(category: str) -> CategoryMatch | None:
    """Return the first rule that matches ``category``, or None for no rule."""
    text = _normalize(category)
    for rule, pattern in _COMPILED:
        if pattern.search(text):
            return CategoryMatch(category, rule.label, rule.verdict)
    return None


def classify_categories(categories: Iterable[str]) -> list[CategoryMatch]:
    """Return the matches for ``categories``, malicious ones first, one per label."""
    matches: dict[str, CategoryMatch] = {}
    for category in categories:
        match = classify_category(category)
        if match is not None and match.label not in matches:
            matches[match.label] = match
    return sorted(matches.values(), key=lambda m: m.verdict is not Verdict.MALICIOUS)
