"""DGA-likeness of a domain label: traits that pronounceable names rarely have.

Each trait adds weight; a label of 10 characters or more fires at weight 3, and a
shorter one at weight 4, because short real names are often abbreviations
(``hdfcbank``, ``nbcsports``). Labels under 8 characters are not judged. Dictionary
DGAs, which join real words, pass unnoticed.
"""

from __future__ import annotations

import re
from itertools import pairwise

from iocscope.sources.lexical_rules import Finding, Name

MIN_LENGTH = 8
SHORT_LENGTH = 10

_VOWELS = frozenset("aeiouy")
# Consonant pairs common in English and in brand names; any other pair of
# consonants counts as rare.
_COMMON_PAIRS = frozenset(
    """bl br ch ck cl cr ct dr fl fr ft gh gl gr kn lb ld lf lk ll lm ln lp ls lt lv
    mb mm mp ms nc nd nf ng nk nn ns nt nv ph pl pp pr ps pt rb rc rd rf rg rk rl rm
    rn rp rr rs rt rv sc sh sk sl sm sn sp ss st sw th tl tr ts tt tw wh wn wr xp
    xt""".split()
)
_HEX = re.compile(r"[0-9a-f]+")


def dga(name: Name) -> Finding | None:
    label = name.registered_label
    if label is None or not label.isascii() or "-" in label:
        return None
    if len(label) < MIN_LENGTH:
        return None
    signals = dga_signals(label)
    weight = sum(signals.values())
    if weight < (3 if len(label) >= SHORT_LENGTH else 4):
        return None
    detail = f"{label} looks machine-generated: {', '.join(signals)}"
    return Finding("dga", min(10 * (weight + 1), 60), detail, "lexical:dga")


def dga_signals(label: str) -> dict[str, int]:
    """Weigh each trait of ``label``, keyed by a readable description."""
    signals: dict[str, int] = {}
    _vowel_share(label, signals)
    _consonant_run(label, signals)
    _rare_pairs(label, signals)
    _digit_mix(label, signals)
    return signals


def _vowel_share(label: str, signals: dict[str, int]) -> None:
    letters = [char for char in label if char.isalpha()]
    share = sum(char in _VOWELS for char in letters) / max(len(letters), 1)
    if share < 0.25:
        signals[f"{share:.0%} vowels"] = 2 if share < 0.1 else 1


def _consonant_run(label: str, signals: dict[str, int]) -> None:
    longest = current = 0
    for char in label:
        current = current + 1 if char.isalpha() and char not in _VOWELS else 0
        longest = max(longest, current)
    if longest >= 5:
        signals[f"{longest} consonants in a row"] = 2 if longest >= 6 else 1


def _rare_pairs(label: str, signals: dict[str, int]) -> None:
    pairs = [label[i : i + 2] for i in range(len(label) - 1)]
    letter_pairs = [pair for pair in pairs if pair.isalpha()]
    rare = [pair for pair in letter_pairs if _is_rare(pair)]
    share = len(rare) / max(len(letter_pairs), 1)
    if share >= 0.25:
        signals[f"{share:.0%} rare consonant pairs"] = 2 if share >= 0.4 else 1


def _is_rare(pair: str) -> bool:
    consonants = pair[0] not in _VOWELS and pair[1] not in _VOWELS
    return consonants and pair not in _COMMON_PAIRS


def _digit_mix(label: str, signals: dict[str, int]) -> None:
    digits = sum(char.isdigit() for char in label) / len(label)
    switches = sum(a.isdigit() != b.isdigit() for a, b in pairwise(label))
    if 0.25 <= digits <= 0.75 and switches >= 4:
        signals[f"digits and letters alternate {switches} times"] = 2
    if len(label) >= 12 and 0 < digits < 1 and _HEX.fullmatch(label):
        signals["hexadecimal string"] = 1
