"""parse_observable: refanging, trimming, classification and canonical values."""

from __future__ import annotations

import pytest

from iocscope.errors import InvalidObservable
from iocscope.models import ObservableType
from iocscope.observables import parse_observable

T = ObservableType


def reject_message(raw: str, type_hint: str | None = None) -> str:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable(raw, type_hint)
    return caught.value.message


# --- refanging -------------------------------------------------------------------

REFANGED = [
    ("test[.]example[.]com", T.DOMAIN, "test.example.com"),
    ("198.51.100[.]23", T.IP, "198.51.100.23"),
    ("hxxp://evil[.]example/path", T.URL, "http://evil.example/path"),
    ("user[@]example[.]com", T.EMAIL, "user@example.com"),
    ("HXXPS://evil[.]example/login", T.URL, "https://evil.example/login"),
    ("hXXps://evil[.]example/login", T.URL, "https://evil.example/login"),
    ("hxxps://evil[.]example/login", T.URL, "https://evil.example/login"),
    ("hXXp://evil[.]example/login", T.URL, "http://evil.example/login"),
    ("fxp://files[.]example/a.bin", T.URL, "ftp://files.example/a.bin"),
    ("evil(.)example", T.DOMAIN, "evil.example"),
    ("evil{.}example", T.DOMAIN, "evil.example"),
    ("evil[dot]example", T.DOMAIN, "evil.example"),
    ("evil(dot)example", T.DOMAIN, "evil.example"),
    ("evil[ . ]example", T.DOMAIN, "evil.example"),
    ("evil dot example", T.DOMAIN, "evil.example"),
    ("evil\\.example", T.DOMAIN, "evil.example"),
    ("http[:]//evil.example/x", T.URL, "http://evil.example/x"),
    ("http[://]evil.example/x", T.URL, "http://evil.example/x"),
    ("http://evil.example[/]x", T.URL, "http://evil.example/x"),
    ("user[at]example[.]com", T.EMAIL, "user@example.com"),
    ("user(at)example.com", T.EMAIL, "user@example.com"),
    ("user (at) example (dot) com", T.EMAIL, "user@example.com"),
    ("user at example dot com", T.EMAIL, "user@example.com"),
    ("2001:db8[:]:1", T.IP, "2001:db8::1"),
]


@pytest.mark.parametrize(("raw", "kind", "value"), REFANGED)
def test_refanged_value(raw: str, kind: ObservableType, value: str) -> None:
    assert parse_observable(raw).value == value


@pytest.mark.parametrize(("raw", "kind", "value"), REFANGED)
def test_refanged_type(raw: str, kind: ObservableType, value: str) -> None:
    assert parse_observable(raw).type is kind


@pytest.mark.parametrize(("raw", "kind", "value"), REFANGED)
def test_refanged_flag_set(raw: str, kind: ObservableType, value: str) -> None:
    assert parse_observable(raw).refanged is True


@pytest.mark.parametrize(("raw", "kind", "value"), REFANGED)
def test_refanged_input_kept(raw: str, kind: ObservableType, value: str) -> None:
    assert parse_observable(raw).input == raw


@pytest.mark.parametrize(("raw", "kind", "value"), REFANGED)
def test_defanged_shares_cache_key(raw: str, kind: ObservableType, value: str) -> None:
    assert parse_observable(raw).cache_key == parse_observable(value).cache_key


@pytest.mark.parametrize(
    "raw",
    [
        "news.ycombinator.com",
        "update.example.com",
        "http://evil.example/",
        "at.example",
    ],
)
def test_clean_input_not_refanged(raw: str) -> None:
    assert parse_observable(raw).refanged is False


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("news.ycombinator.com", "news.ycombinator.com"),
        ("update.example.com", "update.example.com"),
        ("cat.example", "cat.example"),
        ("at.example", "at.example"),
        ("dot.example", "dot.example"),
    ],
)
def test_at_inside_label_stays(raw: str, value: str) -> None:
    observable = parse_observable(raw)
    assert observable.type is T.DOMAIN
    assert observable.value == value


# --- trimming and whitespace -----------------------------------------------------

EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (f"  {EICAR_MD5}\r\n", EICAR_MD5),
        (f"\u200b{EICAR_MD5}", EICAR_MD5),
        (f"\ufeff{EICAR_MD5}", EICAR_MD5),
        (f"{EICAR_MD5}\u00a0", EICAR_MD5),
        (f"\u200c\u200d\u2060{EICAR_MD5}\t", EICAR_MD5),
        ("evil.example\t", "evil.example"),
        ("\ufeff evil.example \u200b", "evil.example"),
    ],
)
def test_outer_blanks_trimmed(raw: str, value: str) -> None:
    assert parse_observable(raw).value == value


def test_trimmed_input_kept_exactly() -> None:
    raw = f"  {EICAR_MD5}\r\n"
    assert parse_observable(raw).input == raw


def test_trimming_is_not_refanging() -> None:
    assert parse_observable(f" {EICAR_MD5}\n").refanged is False


@pytest.mark.parametrize(
    "raw",
    [
        "44d88612 fea8a8f36de82e1278abb02f",
        "evil .example",
        "http://evil.example/a b",
        "198.51.100.7\t198.51.100.8",
        "evil\u200b.example",
        "evil\u00ad.example",
        "evil\x00.example",
    ],
)
def test_inner_blank_rejected(raw: str) -> None:
    with pytest.raises(InvalidObservable):
        parse_observable(raw)


def test_inner_space_message_explains() -> None:
    message = reject_message("44d88612 fea8a8f36de82e1278abb02f")
    assert "whitespace" in message


@pytest.mark.parametrize("raw", ["", "   ", "\r\n", "\u200b\ufeff"])
def test_empty_rejected(raw: str) -> None:
    assert "empty" in reject_message(raw)


def test_oversized_rejected() -> None:
    assert "maximum" in reject_message("a" * 10_000 + ".example")


# --- hashes ----------------------------------------------------------------------

SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
SHA512 = "cc805d5fab1fd71a4ab352a9c533e65fb2d5b885518f4e565e68847223b8e6b8" * 2


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(EICAR_MD5, T.MD5), (SHA1, T.SHA1), (SHA256, T.SHA256), (SHA512, T.SHA512)],
)
def test_hash_kind_by_length(raw: str, kind: ObservableType) -> None:
    assert parse_observable(raw).type is kind


@pytest.mark.parametrize("type_hint", [None, "hash", "file", "filehash", "sha1"])
def test_upper_hash_lower_cased(type_hint: str | None) -> None:
    observable = parse_observable(SHA1.upper(), type_hint)
    assert observable.value == SHA1


@pytest.mark.parametrize(
    "raw",
    [EICAR_MD5[:-1], EICAR_MD5 + "0", SHA1[:-2], "0" * 48],
)
def test_hash_wrong_length_rejected(raw: str) -> None:
    assert "hex digits" in reject_message(raw)


@pytest.mark.parametrize("raw", [EICAR_MD5[:-1] + "z", SHA1[:-1] + "g"])
def test_hash_non_hex_rejected(raw: str) -> None:
    assert "not a hex digit" in reject_message(raw)


@pytest.mark.parametrize("type_hint", ["hash", "md5", "file"])
def test_hash_hint_non_hex_rejected(type_hint: str) -> None:
    with pytest.raises(InvalidObservable):
        parse_observable(EICAR_MD5[:-1] + "z", type_hint)


def test_hash_hint_length_mismatch() -> None:
    message = reject_message(EICAR_MD5, "sha1")
    assert "pass type md5" in message


@pytest.mark.parametrize("type_hint", ["hash", "file", "filehash"])
def test_hash_hint_rejects_domain(type_hint: str) -> None:
    assert "domain" in reject_message("evil.example", type_hint)


# --- IP addresses and networks ---------------------------------------------------

ADDRESSES = [
    ("198.51.100.7", T.IP, "198.51.100.7"),
    ("198.51.100.0/24", T.CIDR, "198.51.100.0/24"),
    ("198.51.100.7/32", T.IP, "198.51.100.7"),
    ("2001:db8::/32", T.CIDR, "2001:db8::/32"),
    ("2001:db8::1/128", T.IP, "2001:db8::1"),
    ("2001:0DB8:0000:0000:0000:0000:0000:0001", T.IP, "2001:db8::1"),
    ("2001:db8:0:0:1:0:0:1", T.IP, "2001:db8::1:0:0:1"),
    ("[2001:db8::1]", T.IP, "2001:db8::1"),
    ("::ffff:198.51.100.7", T.IP, "198.51.100.7"),
    ("::ffff:c633:6407", T.IP, "198.51.100.7"),
    ("::ffff:198.51.100.0/120", T.CIDR, "198.51.100.0/24"),
    ("::", T.IP, "::"),
    ("0.0.0.0", T.IP, "0.0.0.0"),
]


@pytest.mark.parametrize(("raw", "kind", "value"), ADDRESSES)
def test_address_type(raw: str, kind: ObservableType, value: str) -> None:
    assert parse_observable(raw).type is kind


@pytest.mark.parametrize(("raw", "kind", "value"), ADDRESSES)
def test_address_value(raw: str, kind: ObservableType, value: str) -> None:
    assert parse_observable(raw).value == value


@pytest.mark.parametrize(
    ("raw", "scope"),
    [
        ("198.51.100.0/24", "documentation"),
        ("2001:db8::/32", "documentation"),
        ("10.1.0.0/16", "private"),
        ("8.8.8.0/24", "global"),
        ("8.8.8.8", "global"),
        ("203.0.113.7", "documentation"),
    ],
)
def test_address_scope_set(raw: str, scope: str) -> None:
    assert parse_observable(raw).scope == scope


def test_stray_slash_rejected() -> None:
    assert "stray '/'" in reject_message("198.51.100.7/")


def test_host_bits_network_fix() -> None:
    assert "198.51.100.0/24" in reject_message("198.51.100.7/24")


def test_host_bits_address_fix() -> None:
    assert "'198.51.100.7'" in reject_message("198.51.100.7/24")


@pytest.mark.parametrize(
    ("raw", "limit"),
    [("0.0.0.0/0", "/8"), ("10.0.0.0/7", "/8"), ("::/0", "/32"), ("2000::/3", "/32")],
)
def test_short_prefix_rejected(raw: str, limit: str) -> None:
    assert limit in reject_message(raw)


def test_prefix_limit_configurable() -> None:
    observable = parse_observable("10.0.0.0/7", min_ipv4_prefix=4)
    assert observable.value == "10.0.0.0/7"


def test_ipv6_prefix_limit_configurable() -> None:
    with pytest.raises(InvalidObservable):
        parse_observable("2001:db8::/32", min_ipv6_prefix=48)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("010.1.1.1", "leading zero"),
        ("198.51.100.07", "leading zero"),
        ("1.2.3", "instead of 4"),
        ("1.2.3.4.5", "instead of 4"),
        ("198.51.100.256", "larger than 255"),
        ("198.51.100.0/33", "from 0 to 32"),
        ("2001:db8::/129", "from 0 to 128"),
        ("2001:db8::/abc", "prefix length"),
        ("2001:db8:::1", "IPv6"),
        ("fe80::1%eth0", "zone index"),
        ("198.51.100.7:8080", "has a port"),
        ("[2001:db8::1]:443", "has a port"),
    ],
)
def test_bad_address_rejected(raw: str, fragment: str) -> None:
    assert fragment in reject_message(raw)


@pytest.mark.parametrize(
    ("raw", "type_hint", "kind"),
    [
        ("198.51.100.7", "ip", T.IP),
        ("198.51.100.7", "ipv4", T.IP),
        ("2001:db8::1", "ipv6", T.IP),
        ("198.51.100.7", "ip-src", T.IP),
        ("198.51.100.7", "ip-dst", T.IP),
        ("198.51.100.0/24", "cidr", T.CIDR),
        ("198.51.100.0/24", "network", T.CIDR),
        ("198.51.100.0/24", "ip-range", T.CIDR),
        ("198.51.100.7", "cidr", T.IP),
        ("198.51.100.7/32", "ip", T.IP),
    ],
)
def test_address_hint_accepted(raw: str, type_hint: str, kind: ObservableType) -> None:
    assert parse_observable(raw, type_hint).type is kind


def test_ip_hint_rejects_network() -> None:
    assert "pass type cidr" in reject_message("198.51.100.0/24", "ip")


# --- domains ---------------------------------------------------------------------

DOMAINS = [
    ("www.example.com.", "www.example.com", "example.com"),
    ("WWW.Example.COM.", "www.example.com", "example.com"),
    ("www.example.co.uk", "www.example.co.uk", "example.co.uk"),
    ("example.co.uk", "example.co.uk", "example.co.uk"),
    ("a.b.c.example.com", "a.b.c.example.com", "example.com"),
    ("evil.github.io", "evil.github.io", "evil.github.io"),
    ("evil.example", "evil.example", "evil.example"),
    ("_dmarc.example.com", "_dmarc.example.com", "example.com"),
    ("bücher.example", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("BÜCHER.example", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("XN--BCHER-KVA.example", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("evil\u3002example", "evil.example", "evil.example"),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
]


@pytest.mark.parametrize(("raw", "value", "registered"), DOMAINS)
def test_domain_type(raw: str, value: str, registered: str) -> None:
    assert parse_observable(raw).type is T.DOMAIN


@pytest.mark.parametrize(("raw", "value", "registered"), DOMAINS)
def test_domain_value(raw: str, value: str, registered: str) -> None:
    assert parse_observable(raw).value == value


@pytest.mark.parametrize(("raw", "value", "registered"), DOMAINS)
def test_domain_registered(raw: str, value: str, registered: str) -> None:
    assert parse_observable(raw).registered_domain == registered


@pytest.mark.parametrize(("raw", "value", "registered"), DOMAINS)
def test_domain_not_public_suffix(raw: str, value: str, registered: str) -> None:
    assert parse_observable(raw).is_public_suffix is False


@pytest.mark.parametrize("raw", ["co.uk", "github.io", "co.uk."])
def test_public_suffix_flagged(raw: str) -> None:
    assert parse_observable(raw).is_public_suffix is True


@pytest.mark.parametrize("raw", ["co.uk", "github.io"])
def test_public_suffix_unregistered(raw: str) -> None:
    assert parse_observable(raw).registered_domain is None


@pytest.mark.parametrize("type_hint", ["domain", "fqdn", "hostname", "FQDN"])
def test_domain_hint_family(type_hint: str) -> None:
    observable = parse_observable("mail.example.com", type_hint)
    assert observable.registered_domain == "example.com"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("example.com..", "empty label"),
        ("a..b", "empty label"),
        (".example.com", "empty label"),
        ("ev!l.example", "not allowed"),
        ("*.evil.example", "not allowed"),
        ("xn--zz.example", "punycode"),
        ("i\u2764.example", "internationalized"),
        ("a" * 64 + ".example", "at most 63"),
        (("a" * 60 + ".") * 5 + "example", "at most 253"),
        ("evil.123", "numeric"),
        ("localhost", "single-label"),
        ("evil.example/", "stray '/'"),
        ("evil.example:8080", "has a port"),
    ],
)
def test_bad_domain_rejected(raw: str, fragment: str) -> None:
    assert fragment in reject_message(raw)


@pytest.mark.parametrize("raw", ["localhost", "intranet", "com"])
def test_single_label_with_hint(raw: str) -> None:
    assert parse_observable(raw, "domain").value == raw


def test_single_label_no_registered() -> None:
    assert parse_observable("localhost", "domain").registered_domain is None


def test_single_label_tld_is_suffix() -> None:
    assert parse_observable("com", "domain").is_public_suffix is True


# --- URLs ------------------------------------------------------------------------

URLS = [
    ("http://www.example.co.uk./maps", "http://www.example.co.uk/maps"),
    ("HTTP://WWW.Example.COM/Path?Q=A", "http://www.example.com/Path?Q=A"),
    ("https://evil.example:443/x", "https://evil.example/x"),
    ("http://evil.example:80/x", "http://evil.example/x"),
    ("ftp://evil.example:21/x", "ftp://evil.example/x"),
    ("http://evil.example:8080/x", "http://evil.example:8080/x"),
    ("http://evil.example:/x", "http://evil.example/x"),
    ("http://evil.example", "http://evil.example/"),
    ("http://evil.example?q=1", "http://evil.example/?q=1"),
    ("http://evil.example/a#frag", "http://evil.example/a"),
    ("http://evil.example/a/../b/%41", "http://evil.example/a/../b/%41"),
    ("http://user:pw@evil.example/", "http://user:pw@evil.example/"),
    ("http://bücher.example/ü", "http://xn--bcher-kva.example/ü"),
    ("http://198.51.100.7:8080/a", "http://198.51.100.7:8080/a"),
    ("http://[2001:DB8::1]/a", "http://[2001:db8::1]/a"),
    ("http://localhost/a", "http://localhost/a"),
    ("evil.example/a.exe", "http://evil.example/a.exe"),
    ("evil.example?id=1", "http://evil.example/?id=1"),
    ("198.51.100.7/a.exe", "http://198.51.100.7/a.exe"),
    ("evil.example:8080/a", "http://evil.example:8080/a"),
]


@pytest.mark.parametrize(("raw", "value"), URLS)
def test_url_value(raw: str, value: str) -> None:
    assert parse_observable(raw).value == value


@pytest.mark.parametrize(("raw", "value"), URLS)
def test_url_type(raw: str, value: str) -> None:
    assert parse_observable(raw).type is T.URL


@pytest.mark.parametrize(
    ("raw", "host", "registered"),
    [
        ("http://www.example.co.uk./maps", "www.example.co.uk", "example.co.uk"),
        ("https://evil.github.io/x", "evil.github.io", "evil.github.io"),
        ("http://[2001:db8::1]/", "2001:db8::1", None),
        ("http://198.51.100.7/", "198.51.100.7", None),
    ],
)
def test_url_host_fields(raw: str, host: str, registered: str | None) -> None:
    observable = parse_observable(raw)
    assert observable.host == host
    assert observable.registered_domain == registered


@pytest.mark.parametrize(
    ("raw", "scope"),
    [
        ("http://10.0.0.5/", "private"),
        ("http://[::1]:8080/", "loopback"),
        ("http://203.0.113.9/", "documentation"),
        ("http://evil.example/", None),
    ],
)
def test_url_scope(raw: str, scope: str | None) -> None:
    assert parse_observable(raw).scope == scope


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("javascript://alert(1)", "unsupported scheme"),
        ("http:///a", "host is empty"),
        ("http://evil..example/", "empty label"),
        ("http://evil.example:99999/", "port"),
        ("http://evil.example:8o/", "port"),
        ("http://2001:db8::1/", "brackets"),
        ("http://[2001:db8::1/", "bracketed"),
        ("http://010.0.0.1/", "leading zero"),
        ("http:/evil.example", "'//' is missing"),
        ("localhost/a", "single-label host"),
    ],
)
def test_bad_url_rejected(raw: str, fragment: str) -> None:
    assert fragment in reject_message(raw)


@pytest.mark.parametrize(
    ("raw", "type_hint", "value"),
    [
        ("evil.example", "url", "http://evil.example/"),
        ("198.51.100.7", "uri", "http://198.51.100.7/"),
        ("2001:db8::1", "link", "http://[2001:db8::1]/"),
        ("localhost/a", "url", "http://localhost/a"),
        ("hxxp://evil[.]example/", "url", "http://evil.example/"),
    ],
)
def test_url_hint_accepted(raw: str, type_hint: str, value: str) -> None:
    assert parse_observable(raw, type_hint).value == value


def test_url_hint_rejects_hash() -> None:
    assert "md5" in reject_message(EICAR_MD5, "url")


def test_url_hint_keeps_bad_scheme() -> None:
    assert "unsupported scheme" in reject_message("javascript://x", "url")


# --- email -----------------------------------------------------------------------

EMAILS = [
    ("user@example.com", "user@example.com"),
    ("User.Name+tag@Example.COM", "user.name+tag@example.com"),
    ("user@example.com.", "user@example.com"),
    ("user@bücher.example", "user@xn--bcher-kva.example"),
    ("user[@]example[.]com", "user@example.com"),
]


@pytest.mark.parametrize(("raw", "value"), EMAILS)
def test_email_value(raw: str, value: str) -> None:
    assert parse_observable(raw).value == value


@pytest.mark.parametrize("type_hint", ["email", "mail", "mail_address", "MAIL"])
def test_email_hint_family(type_hint: str) -> None:
    assert parse_observable("user@example.com", type_hint).type is T.EMAIL


def test_email_host_fields() -> None:
    observable = parse_observable("user@mail.example.co.uk")
    assert observable.host == "mail.example.co.uk"
    assert observable.registered_domain == "example.co.uk"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("user@@example.com", "2 '@' signs"),
        ("a@b@example.com", "2 '@' signs"),
        ("@example.com", "empty"),
        ("user@", "empty"),
        ("us..er@example.com", "local part"),
        (".user@example.com", "local part"),
        ('"john"@example.com', "local part"),
        ("user@localhost", "single-label domain"),
        ("user@evil..example", "invalid domain part"),
        ("user@[198.51.100.7]", "invalid domain part"),
        ("a" * 65 + "@example.com", "64"),
    ],
)
def test_bad_email_rejected(raw: str, fragment: str) -> None:
    assert fragment in reject_message(raw)


def test_email_hint_rejects_domain() -> None:
    assert "pass type domain" in reject_message("example.com", "email")


# --- type hints and error fields -------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "type_hint", "detected"),
    [
        ("evil.example", "ip", "domain"),
        ("198.51.100.7", "domain", "ip"),
        ("http://evil.example/", "domain", "url"),
        ("user@example.com", "domain", "email"),
        (EICAR_MD5, "domain", "md5"),
        ("198.51.100.7", "md5", "ip"),
    ],
)
def test_hint_mismatch_names_type(raw: str, type_hint: str, detected: str) -> None:
    assert f"pass type {detected}" in reject_message(raw, type_hint)


@pytest.mark.parametrize("type_hint", ["filename", "registry", "other", "ipv7"])
def test_unknown_type_field(type_hint: str) -> None:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable("evil.example", type_hint)
    assert caught.value.field == "type"


def test_unknown_type_lists_supported() -> None:
    assert "fqdn" in reject_message("evil.example", "filename")


def test_bad_value_field() -> None:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable("198.51.100.7/")
    assert caught.value.field == "value"


def test_error_value_is_raw() -> None:
    raw = " 198.51.100[.]7/ \n"
    with pytest.raises(InvalidObservable) as caught:
        parse_observable(raw)
    assert caught.value.value == raw


@pytest.mark.parametrize("type_hint", ["", "  "])
def test_blank_hint_detects(type_hint: str) -> None:
    assert parse_observable("evil.example", type_hint).type is T.DOMAIN


def test_enum_hint_accepted() -> None:
    assert parse_observable("evil.example", T.DOMAIN).type is T.DOMAIN


def test_non_string_value_rejected() -> None:
    with pytest.raises(InvalidObservable):
        parse_observable(None)  # type: ignore[arg-type]


def test_non_string_type_rejected() -> None:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable("evil.example", 3)  # type: ignore[arg-type]
    assert caught.value.field == "type"
