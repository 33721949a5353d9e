"""Property tests: parse_observable raises only InvalidObservable, and is idempotent."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains, urls

from iocscope.errors import InvalidObservable
from iocscope.models import Observable
from iocscope.observables import extract_observables, parse_observable
from iocscope.observables.type_names import TYPE_ALIASES

TYPE_HINTS = st.sampled_from([None, "", *TYPE_ALIASES, "filename"])
# Characters the parser treats specially, mixed in so the search reaches its
# branches instead of only random letters.
SPECIAL = st.sampled_from([*"./:@[]()%#?\\-_ \t\u200b\ufeff\u3002", "xn--"])
NEAR_OBSERVABLE = st.lists(
    st.one_of(SPECIAL, st.text(string.hexdigits, max_size=8), st.text(max_size=4)),
    max_size=12,
).map("".join)

VALID = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"{a}/24"),
    domains(),
    urls(),
    st.emails(),
    st.text("0123456789abcdefABCDEF", min_size=32, max_size=32),
    st.text("0123456789abcdef", min_size=64, max_size=64),
)


def parse_or_none(raw: str, hint: str | None = None) -> Observable | None:
    try:
        return parse_observable(raw, hint)
    except InvalidObservable:
        return None


@settings(max_examples=500)
@given(raw=st.text(), hint=TYPE_HINTS)
def test_any_text_only_invalid_observable(raw: str, hint: str | None) -> None:
    parse_or_none(raw, hint)


@settings(max_examples=500)
@given(raw=NEAR_OBSERVABLE, hint=TYPE_HINTS)
def test_near_observable_only_invalid(raw: str, hint: str | None) -> None:
    parse_or_none(raw, hint)


@settings(max_examples=300)
@given(raw=st.one_of(VALID, NEAR_OBSERVABLE))
def test_canonical_value_is_fixed_point(raw: str) -> None:
    first = parse_or_none(raw)
    if first is None:
        return
    again = parse_observable(first.value, first.type)
    assert again.value == first.value


@settings(max_examples=300)
@given(raw=st.one_of(VALID, NEAR_OBSERVABLE))
def test_canonical_type_is_fixed_point(raw: str) -> None:
    first = parse_or_none(raw)
    if first is None:
        return
    assert parse_observable(first.value).type is first.type


@settings(max_examples=300)
@given(text=st.text())
def test_extract_never_raises(text: str) -> None:
    extract_observables(text)
