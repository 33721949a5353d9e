"""File hashes: hex digests whose kind follows from their length."""

from __future__ import annotations

import re

from iocscope.errors import InvalidObservable
from iocscope.models import Observable, ObservableType
from iocscope.observables.cleaning import show

HASH_LENGTHS: dict[int, ObservableType] = {
    32: ObservableType.MD5,
    40: ObservableType.SHA1,
    64: ObservableType.SHA256,
    128: ObservableType.SHA512,
}
_LENGTH_BY_TYPE = {kind: length for length, kind in HASH_LENGTHS.items()}
_HEX = re.compile(r"[0-9a-fA-F]+")
_NON_HEX = re.compile(r"[^0-9a-fA-F]")

LENGTHS_TEXT = "32 (md5), 40 (sha1), 64 (sha256) or 128 (sha512)"


def is_hex(value: str) -> bool:
    return _HEX.fullmatch(value) is not None


def hash_kind(value: str) -> ObservableType | None:
    """Return the hash type of a hex digest of a known length, or None."""
    if not is_hex(value):
        return None
    return HASH_LENGTHS.get(len(value))


def hash_observable(value: str, expected: ObservableType | None = None) -> Observable:
    """Parse a hex digest, lower-cased, of the expected kind or any kind if None."""
    _check_hex(value)
    kind = HASH_LENGTHS.get(len(value))
    if kind is None:
        raise InvalidObservable(
            f"{show(value)} has {len(value)} hex digits, but a hash has "
            f"{LENGTHS_TEXT}: check that it was copied whole",
            value=value,
        )
    if expected is not None and kind is not expected:
        raise InvalidObservable(
            f"{show(value)} is not a valid {expected}: it has {len(value)} hex "
            f"digits, which makes it {kind}, and {expected} has "
            f"{_LENGTH_BY_TYPE[expected]}; pass type {kind} or hash",
            value=value,
        )
    return Observable(type=kind, value=value.lower(), input=value)


def _check_hex(value: str) -> None:
    bad = _NON_HEX.search(value)
    if bad is None:
        return
    raise InvalidObservable(
        f"{show(value)} is not a valid hash: {bad.group()!r} at position "
        f"{bad.start()} is not a hex digit (0-9, a-f)",
        value=value,
    )
