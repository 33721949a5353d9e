"""extract_observables on free text, and refang on its own."""

from __future__ import annotations

import pytest

from iocscope.models import ObservableType
from iocscope.observables import extract_observables, refang

T = ObservableType


def values(text: str) -> list[str]:
    return [observable.value for observable in extract_observables(text)]


def test_bracketed_urls_extracted() -> None:
    text = (
        "Payload at hxxp[:]//evil[.]example/a.exe, panel https[:]//evil.example/ "
        "and http[://]evil[.]example/x, also http://evil[.]example[/]path."
    )
    assert values(text) == [
        "http://evil.example/a.exe",
        "https://evil.example/",
        "http://evil.example/x",
        "http://evil.example/path",
    ]


def test_extracted_input_as_written() -> None:
    found = extract_observables("see hxxp[:]//evil[.]example/a.exe now")
    assert found[0].input == "hxxp[:]//evil[.]example/a.exe"


def test_extracted_refanged_flag() -> None:
    found = extract_observables("see hxxp[:]//evil[.]example/a.exe now")
    assert found[0].refanged is True


def test_clean_extraction_not_refanged() -> None:
    found = extract_observables("see http://evil.example/a.exe now")
    assert found[0].refanged is False


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("host 198.51.100[.]23 beaconed", T.IP, "198.51.100.23"),
        ("range 203.0.113.0/24 listed", T.CIDR, "203.0.113.0/24"),
        ("v6 2001:db8::1 seen", T.IP, "2001:db8::1"),
        ("v6 net 2001:db8::/32 seen", T.CIDR, "2001:db8::/32"),
        ("link-local fe80::, again", T.IP, "fe80::"),
        ("mail from user[at]example[.]com today", T.EMAIL, "user@example.com"),
        ("mail user (at) example (dot) com today", T.EMAIL, "user@example.com"),
        ("drop test[.]example[.]com now", T.DOMAIN, "test.example.com"),
        (
            "md5 44D88612FEA8A8F36DE82E1278ABB02F.",
            T.MD5,
            "44d88612fea8a8f36de82e1278abb02f",
        ),
        (
            "sha1=3395856CE81F2B7382DEE72602F798B642F14140",
            T.SHA1,
            "3395856ce81f2b7382dee72602f798b642f14140",
        ),
        ("ip 198.51.100.7:8080 port", T.IP, "198.51.100.7"),
        ("go to evil.example/a.exe now", T.URL, "http://evil.example/a.exe"),
        ("site www.bücher.example ok", T.DOMAIN, "www.xn--bcher-kva.example"),
        ("(see https://evil.example/a_(b))", T.URL, "https://evil.example/a_(b)"),
        ("[http://evil.example/x]", T.URL, "http://evil.example/x"),
    ],
)
def test_single_observable_found(text: str, kind: ObservableType, value: str) -> None:
    found = extract_observables(text)
    assert [(o.type, o.value) for o in found] == [(kind, value)]


@pytest.mark.parametrize(
    "text",
    [
        "open file.txt please",
        "as in e.g. the other one",
        "version 1.2.3 released",
        "build 10.0.19041.1 installed",
        "at 12:30:45 the job ran",
        "std::vector and a :: b",
        "path /var/www/evil.com/index",
        "path C:\\tmp\\evil.com",
        "seen at example",
        "short hash 44d88612fea8",
        "bad 198.51.100.7/24 net",
        "bad md5 44d88612fea8a8f36de82e1278abb02z here",
        "local user@intranet here",
        "local user@host.local here",
        "see notes.txt/part2 here",
        "MAC 00:1a:2b:3c:4d:5e",
    ],
)
def test_non_observables_skipped(text: str) -> None:
    assert values(text) == []


def test_spaced_at_not_email() -> None:
    assert values("Seen at evil.example today") == ["evil.example"]


def test_url_host_not_domain() -> None:
    text = "evil.example served http://evil.example/a.exe"
    assert values(text) == ["http://evil.example/a.exe"]


def test_email_domain_not_domain() -> None:
    text = "evil.example sent from admin@evil.example"
    assert values(text) == ["admin@evil.example"]


def test_duplicates_collapsed() -> None:
    text = "evil[.]example, EVIL.example and evil.example."
    assert values(text) == ["evil.example"]


def test_first_appearance_order() -> None:
    text = f"{'a' * 32} then 198.51.100.7 then hxxp://evil[.]example/"
    assert values(text) == ["a" * 32, "198.51.100.7", "http://evil.example/"]


def test_empty_text_nothing() -> None:
    assert extract_observables("") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("evil[.]example", "evil.example"),
        ("evil(.)example", "evil.example"),
        ("evil{.}example", "evil.example"),
        ("evil[dot]example", "evil.example"),
        ("evil(dot)example", "evil.example"),
        ("evil dot example", "evil.example"),
        ("evil\\.example", "evil.example"),
        ("http[:]//a", "http://a"),
        ("http[://]a", "http://a"),
        ("http://a[/]b", "http://a/b"),
        ("HXXPS://a", "https://a"),
        ("hXXp://a", "http://a"),
        ("hxxps[:]//a", "https://a"),
        ("fxp://a", "ftp://a"),
        ("u[@]a", "u@a"),
        ("u[at]a", "u@a"),
        ("u(at)a", "u@a"),
        ("u (at) a", "u@a"),
        ("u at a", "u@a"),
        ("news.ycombinator.com", "news.ycombinator.com"),
        ("hxxpd is a word", "hxxpd is a word"),
    ],
)
def test_refang_forms(text: str, expected: str) -> None:
    assert refang(text) == expected


def test_refang_spaced_words_off() -> None:
    assert refang("seen at evil dot example", spaced_words=False) == (
        "seen at evil dot example"
    )
