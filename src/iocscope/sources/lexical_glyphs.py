"""Character-level helpers for the lexical source: IDNA decoding, scripts, lookalikes.

The confusables map is a small hand-picked subset of lowercase Cyrillic, Greek,
Armenian and non-ASCII Latin letters that render like an ASCII letter in common
fonts. It is not the full Unicode confusables table (UTS #39).
"""

from __future__ import annotations

import unicodedata

import idna

# Unicode names of non-ASCII letters, and the ASCII letter each is drawn like.
_LOOKALIKE_LETTERS: tuple[tuple[str, str], ...] = (
    ("CYRILLIC SMALL LETTER A", "a"),
    ("CYRILLIC SMALL LETTER ES", "c"),
    ("CYRILLIC SMALL LETTER KOMI DE", "d"),
    ("CYRILLIC SMALL LETTER IE", "e"),
    ("CYRILLIC SMALL LETTER IO", "e"),
    ("CYRILLIC SMALL LETTER SHHA", "h"),
    ("CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I", "i"),
    ("CYRILLIC SMALL LETTER YI", "i"),
    ("CYRILLIC SMALL LETTER JE", "j"),
    ("CYRILLIC SMALL LETTER KA", "k"),
    ("CYRILLIC SMALL LETTER PALOCHKA", "l"),
    ("CYRILLIC SMALL LETTER O", "o"),
    ("CYRILLIC SMALL LETTER ER", "p"),
    ("CYRILLIC SMALL LETTER QA", "q"),
    ("CYRILLIC SMALL LETTER DZE", "s"),
    ("CYRILLIC SMALL LETTER U", "y"),
    ("CYRILLIC SMALL LETTER HA", "x"),
    ("CYRILLIC SMALL LETTER WE", "w"),
    ("CYRILLIC SMALL LETTER IZHITSA", "v"),
    ("GREEK SMALL LETTER ALPHA", "a"),
    ("GREEK SMALL LETTER EPSILON", "e"),
    ("GREEK SMALL LETTER IOTA", "i"),
    ("GREEK SMALL LETTER KAPPA", "k"),
    ("GREEK SMALL LETTER NU", "v"),
    ("GREEK SMALL LETTER OMICRON", "o"),
    ("GREEK SMALL LETTER RHO", "p"),
    ("GREEK SMALL LETTER TAU", "t"),
    ("GREEK SMALL LETTER UPSILON", "u"),
    ("GREEK SMALL LETTER CHI", "x"),
    ("GREEK LUNATE SIGMA SYMBOL", "c"),
    ("ARMENIAN SMALL LETTER HO", "h"),
    ("ARMENIAN SMALL LETTER VO", "n"),
    ("ARMENIAN SMALL LETTER SEH", "u"),
    ("ARMENIAN SMALL LETTER OH", "o"),
    ("ARMENIAN SMALL LETTER ZA", "q"),
    ("LATIN SMALL LETTER DOTLESS I", "i"),
    ("LATIN SMALL LETTER ALPHA", "a"),
    ("LATIN SMALL LETTER SCRIPT G", "g"),
    ("LATIN SMALL LETTER IOTA", "i"),
    ("LATIN LETTER SMALL CAPITAL R", "r"),
)
CONFUSABLES: dict[str, str] = {
    unicodedata.lookup(letter): ascii_letter
    for letter, ascii_letter in _LOOKALIKE_LETTERS
}

# Scripts whose letters are routinely confused with one another.
CONFUSABLE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN"})

# ASCII sequences that read like another letter. Multi-character ones go first.
_ASCII_LOOKALIKES: tuple[tuple[str, str], ...] = (
    ("rn", "m"),
    ("vv", "w"),
    ("0", "o"),
    ("1", "l"),
    ("i", "l"),
    ("3", "e"),
    ("4", "a"),
    ("5", "s"),
    ("7", "t"),
    ("8", "b"),
    ("9", "g"),
    ("-", ""),
)


def decode_label(label: str) -> str:
    """Return the Unicode form of an A-label, or any other label unchanged.

    Raises ``idna.IDNAError`` for an A-label that IDNA 2008 rejects.
    """
    if not label.startswith("xn--"):
        return label
    return idna.decode(label)


def decode_label_lenient(label: str) -> str:
    """Decode an A-label that IDNA 2008 rejects, so its characters can be inspected.

    Falls back to raw Punycode (RFC 3492), and to the label itself when even that
    fails.
    """
    try:
        return decode_label(label)
    except idna.IDNAError:
        pass
    try:
        return label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return label


def letter_scripts(text: str) -> set[str]:
    """Return the scripts of the letters in ``text``, from their Unicode names."""
    scripts: set[str] = set()
    for char in text:
        if unicodedata.category(char).startswith("L"):
            scripts.add(unicodedata.name(char, "UNKNOWN").split(" ")[0])
    return scripts


def to_latin(text: str) -> str:
    """Replace each confusable letter with the ASCII letter it looks like."""
    return "".join(CONFUSABLES.get(char, char) for char in text)


def fold_lookalikes(text: str) -> str:
    """Fold ASCII lookalikes (``0`` and ``o``, ``rn`` and ``m``) to one spelling.

    Two labels that fold to the same string read alike at a glance.
    """
    folded = to_latin(text)
    for lookalike, letter in _ASCII_LOOKALIKES:
        folded = folded.replace(lookalike, letter)
    return folded
