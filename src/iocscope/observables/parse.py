"""Turn one raw value, with an optional type hint, into a canonical Observable."""

from __future__ import annotations

from iocscope.errors import InvalidObservable
from iocscope.models import HASH_TYPES, Observable, ObservableType
from iocscope.observables.cleaning import reject_invisible, reject_oversized, show, trim
from iocscope.observables.detect import PrefixPolicy, detect_observable
from iocscope.observables.domains import domain_observable
from iocscope.observables.hashes import hash_observable
from iocscope.observables.refang import refang
from iocscope.observables.type_names import canonical_type
from iocscope.observables.urls import has_scheme, url_observable

# Types that a url hint turns into a URL with http:// assumed.
_URL_HOST_TYPES = (ObservableType.DOMAIN, ObservableType.IP)


def parse_observable(
    raw: str,
    type_hint: str | None = None,
    *,
    min_ipv4_prefix: int = 8,
    min_ipv6_prefix: int = 32,
) -> Observable:
    """Parse one observable: trim, refang, classify, validate and canonicalize.

    ``type_hint`` is a type name or alias (see :func:`canonical_type`); None or a
    blank string means "detect from the value". Networks with a prefix shorter than
    ``min_ipv4_prefix`` or ``min_ipv6_prefix`` are rejected. Pure: no DNS and no
    network access. Raises InvalidObservable, and no other exception, for any
    string; ``field`` is "type" for an unknown type name and "value" otherwise.
    """
    policy = PrefixPolicy(min_ipv4_prefix, min_ipv6_prefix)
    try:
        return _parse(raw, type_hint, policy)
    except InvalidObservable as exc:
        exc.value = raw
        raise


def _parse(raw: str, type_hint: str | None, policy: PrefixPolicy) -> Observable:
    if not isinstance(raw, str):
        raise InvalidObservable(
            f"an observable must be a string, not {type(raw).__name__}", value=raw
        )
    hinted, kind = _read_hint(type_hint)
    value = _clean(raw)
    refanged = refang(value)
    reject_invisible(refanged)
    if hinted:
        observable = _parse_as(refanged, kind, policy)
    else:
        observable = detect_observable(refanged, policy)
    return observable.model_copy(update={"input": raw, "refanged": refanged != value})


def _read_hint(type_hint: str | None) -> tuple[bool, ObservableType | None]:
    """Return whether a type was given, and its type (None for any hash)."""
    if type_hint is None:
        return False, None
    if not isinstance(type_hint, str):
        raise InvalidObservable(
            f"the type must be a string, not {type(type_hint).__name__}",
            value=type_hint,
            field="type",
        )
    if not type_hint.strip():
        return False, None
    return True, canonical_type(type_hint)


def _clean(raw: str) -> str:
    reject_oversized(raw)
    value = trim(raw)
    if not value:
        raise InvalidObservable(
            "the observable is empty: send an ip, cidr, domain, url, email or hash",
            value=raw,
        )
    return value


def _parse_as(
    value: str, kind: ObservableType | None, policy: PrefixPolicy
) -> Observable:
    """Parse a value the caller declared as ``kind`` (None: a hash of any kind)."""
    try:
        detected = detect_observable(value, policy)
    except InvalidObservable as exc:
        return _parse_undetected(value, kind, exc)
    if _fits(detected.type, kind):
        return detected
    return _convert_or_reject(value, detected, kind)


def _fits(detected: ObservableType, kind: ObservableType | None) -> bool:
    if kind is None:
        return detected in HASH_TYPES
    if kind is ObservableType.CIDR:
        # A /32 or /128 network is returned as a plain ip, so an ip fits too.
        return detected in (ObservableType.IP, ObservableType.CIDR)
    return detected is kind


def _parse_undetected(
    value: str, kind: ObservableType | None, error: InvalidObservable
) -> Observable:
    """Retry the forms that only a hint makes acceptable, or re-raise ``error``.

    A hint of domain accepts a single-label name (``localhost``); a hint of url
    accepts a host without scheme whose name has a single label.
    """
    try:
        if kind is ObservableType.DOMAIN:
            return domain_observable(value, single_label=True)
        if kind is ObservableType.URL and not has_scheme(value):
            return url_observable(f"http://{value}")
    except InvalidObservable:
        raise error from None
    raise error


def _convert_or_reject(
    value: str, detected: Observable, kind: ObservableType | None
) -> Observable:
    if kind is ObservableType.URL and detected.type in _URL_HOST_TYPES:
        return url_observable(f"http://{_url_host(detected)}/")
    if kind in HASH_TYPES and detected.type in HASH_TYPES:
        return hash_observable(value, kind)
    expected = "hash" if kind is None else kind.value
    raise InvalidObservable(
        f"{show(value)} is not a valid {expected}: it parses as type "
        f"{detected.type.value} ({detected.value}); pass type "
        f"{detected.type.value}, or omit the type",
        value=value,
    )


def _url_host(detected: Observable) -> str:
    if ":" in detected.value:
        return f"[{detected.value}]"
    return detected.value
