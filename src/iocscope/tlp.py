"""Traffic Light Protocol labels: parsing and ordering.

Accepts TLP 2.0 names (``clear``, ``green``, ``amber``, ``amber+strict``, ``red``), the
TLP 1.0 name ``white`` and the numbers Cortex and TheHive send. Cortex numbers
0-3 are white, green, amber, red. TheHive 5 adds 4 for red and sends 3 for
amber+strict; 3 is read as red, the stricter of the two meanings, so a number can
never let an observable reach a source that the sender meant to exclude.
"""

from __future__ import annotations

from enum import IntEnum

from iocscope.errors import InvalidTLP


class TLP(IntEnum):
    CLEAR = 0
    GREEN = 1
    AMBER = 2
    AMBER_STRICT = 3
    RED = 4

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    TLP.CLEAR: "clear",
    TLP.GREEN: "green",
    TLP.AMBER: "amber",
    TLP.AMBER_STRICT: "amber+strict",
    TLP.RED: "red",
}

_BY_NAME = {label: level for level, label in _LABELS.items()} | {"white": TLP.CLEAR}
_BY_NUMBER = {0: TLP.CLEAR, 1: TLP.GREEN, 2: TLP.AMBER, 3: TLP.RED, 4: TLP.RED}


def parse_tlp(value: object) -> TLP:
    """Parse a TLP label or number; raise InvalidTLP naming the value otherwise."""
    if isinstance(value, TLP):
        return value
    if isinstance(value, bool):
        raise _invalid(value)
    if isinstance(value, int):
        if value in _BY_NUMBER:
            return _BY_NUMBER[value]
        raise _invalid(value)
    if isinstance(value, str):
        text = value.strip().lower()
        text = text.removeprefix("tlp:").removeprefix("tlp-").strip()
        text = text.replace("_", "+").replace(" ", "")
        if text.isascii() and text.isdigit():
            return parse_tlp(int(text))
        if text in _BY_NAME:
            return _BY_NAME[text]
    raise _invalid(value)


def _invalid(value: object) -> InvalidTLP:
    return InvalidTLP(
        f"invalid tlp {value!r}: use clear, green, amber, amber+strict or red "
        "(TLP 2.0), white, or a number 0-4 (Cortex 0-3, TheHive 4 for red)",
        value=value,
    )
