"""The lexical source: explainable name rules that flag but never vouch."""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import idna
import pytest
from publicsuffixlist import PublicSuffixList

from iocscope.config import Settings
from iocscope.feeds.store import FeedStore
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import SourceContext, load_sources
from iocscope.sources.lexical import SPEC, LexicalSource
from iocscope.sources.lexical_brands import bundled_brands, parse_brands, typo_variants
from iocscope.sources.lexical_dga import dga
from iocscope.sources.lexical_rules import make_name

PSL = PublicSuffixList()
SOURCE = LexicalSource(bundled_brands())

# Popular real names, brand subdomains among them: no rule may fire on any of them.
POPULAR = [
    "google.com", "youtube.com", "facebook.com", "wikipedia.org", "en.wikipedia.org",
    "github.com", "ycombinator.com", "news.ycombinator.com", "stackoverflow.com",
    "bbc.co.uk", "www.bbc.co.uk", "amazon.co.uk", "microsoft.com", "apple.com",
    "netflix.com", "reddit.com", "linkedin.com", "twitter.com", "instagram.com",
    "whatsapp.com", "yahoo.co.jp", "baidu.com", "bing.com", "cnn.com", "nytimes.com",
    "theguardian.com", "spiegel.de", "lemonde.fr", "wordpress.org", "mozilla.org",
    "python.org", "cloudflare.com", "salesforce.com", "adobe.com", "dropbox.com",
    "zoom.us", "www.paypal.com", "ebay.de", "imdb.com", "espn.com", "booking.com",
    "tripadvisor.com", "spotify.com", "twitch.tv", "walmart.com", "bestbuy.com",
    "mcdonalds.com", "nbcnews.com", "nbcsports.com", "cbssports.com", "techcrunch.com",
    "sbcglobal.net", "w3schools.com", "9gag.com", "4chan.org", "163.com", "qq.com",
    "jd.com", "vk.com", "yandex.ru", "mail.ru", "zhihu.com", "bilibili.com",
    "naver.com", "rakuten.co.jp", "ozon.ru", "wildberries.ru", "10jqka.com.cn",
    "123rf.com", "stackexchange.com", "archive.org", "gitlab.com", "npmjs.com",
    "pypi.org", "kubernetes.io", "openai.com", "office.com", "outlook.live.com",
    "icloud.com", "mail.google.com", "docs.google.com", "login.microsoftonline.com",
    "s3.amazonaws.com", "hdfcbank.com", "businessinsider.com", "craigslist.org",
    "washingtonpost.com", "duckduckgo.com", "geeksforgeeks.org", "jsfiddle.net",
    "dribbble.com", "crunchyroll.com", "squarespace.com", "kleinanzeigen.de",
]  # fmt: skip

# Real words and sites near a brand name: they may carry a weak finding, never a flag.
NEAR_BRANDS = [
    "finance.com", "interest.com", "switch.com", "strike.com", "cooking.com",
    "appleinsider.com", "apple.stackexchange.com", "googleblog.com", "amazon.jobs",
    "google.ch", "paypal.de", "chaseoutdoors.com", "applebees.com",
]  # fmt: skip

LOOKALIKES = [
    ("paypa1.com", "lookalike_homoglyph", "paypal"),
    ("rnicrosoft.com", "lookalike_homoglyph", "microsoft"),
    ("xn--pypal-4ve.com", "lookalike_homoglyph", "paypal"),
    ("g00gle.com", "lookalike_homoglyph", "google"),
    ("pay-pal.com", "lookalike_homoglyph", "paypal"),
    ("xn--80ak6aa92e.com", "lookalike_homoglyph", "apple"),
    ("arnazon.co.uk", "lookalike_homoglyph", "amazon"),
    ("micosoft.com", "lookalike_typo", "microsoft"),
    ("paypla.com", "lookalike_typo", "paypal"),
    ("netfllx.com", "lookalike_homoglyph", "netflix"),
    ("goolge.com", "lookalike_typo", "google"),
    ("secure.paypa1.example", "lookalike_homoglyph", "paypal"),
    ("rnicrosoft-support.example", "lookalike_homoglyph", "microsoft"),
]

DGA_LIKE = [
    "xkqjzvbwprtm.com",
    "a8f7s6d5f4g3h2.net",
    "kjdfh8sd7f6sdf.org",
    "3f2a9c8b7d6e5f4a.com",
    "qwrtzplkjhgf.biz",
]


def domain(host: str) -> Observable:
    return Observable(
        type=ObservableType.DOMAIN,
        value=host,
        input=host,
        registered_domain=PSL.privatesuffix(host),
    )


def url(value: str, host: str, scope: str | None = None) -> Observable:
    return Observable(
        type=ObservableType.URL,
        value=value,
        input=value,
        host=host,
        registered_domain=None if scope else PSL.privatesuffix(host),
        scope=scope,
    )


def rules(result: SourceResult) -> list[str]:
    return [finding["rule"] for finding in result.data["findings"]]


def finding(result: SourceResult, rule: str) -> dict[str, Any]:
    return next(f for f in result.data["findings"] if f["rule"] == rule)


@pytest.mark.parametrize("host", POPULAR)
async def test_popular_name_no_findings(host: str) -> None:
    result = await SOURCE.lookup(domain(host))

    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.data["findings"] == []
    assert result.tags == []
    assert result.confidence is None


@pytest.mark.parametrize("host", NEAR_BRANDS)
async def test_near_brand_not_flagged(host: str) -> None:
    result = await SOURCE.lookup(domain(host))

    assert result.verdict is Verdict.UNKNOWN
    assert not result.flagged


async def test_brand_own_domains_no_findings() -> None:
    brands = bundled_brands()
    owned = [d for d in brands.owner if PSL.privatesuffix(d) == d]

    for host in owned:
        result = await SOURCE.lookup(domain(host))
        assert result.data["findings"] == [], host


@pytest.mark.parametrize(("host", "rule", "brand"), LOOKALIKES)
async def test_lookalike_flagged(host: str, rule: str, brand: str) -> None:
    result = await SOURCE.lookup(domain(host))

    assert result.verdict is Verdict.SUSPICIOUS
    assert rule in rules(result)
    assert f"lexical:lookalike:{brand}" in result.tags


async def test_cyrillic_label_fires_four_rules() -> None:
    result = await SOURCE.lookup(domain("xn--pypal-4ve.com"))

    assert set(rules(result)) == {
        "lookalike_homoglyph",
        "mixed_script",
        "confusable",
        "punycode",
    }
    assert "CYRILLIC and LATIN" in finding(result, "mixed_script")["detail"]
    assert result.score == 100
    assert result.data["points"] == 130


async def test_greek_omicron_mixed_script() -> None:
    host = idna.encode("g\N{GREEK SMALL LETTER OMICRON}ogle.com").decode()

    result = await SOURCE.lookup(domain(host))

    assert "mixed_script" in rules(result)
    assert "lexical:lookalike:google" in result.tags


async def test_plain_idn_weak_only() -> None:
    result = await SOURCE.lookup(domain("xn--mnchen-3ya.de"))

    assert rules(result) == ["punycode"]
    assert "münchen" in finding(result, "punycode")["detail"]
    assert result.verdict is Verdict.UNKNOWN


async def test_invalid_idna_label() -> None:
    result = await SOURCE.lookup(domain("xn--ls8h.la"))

    assert rules(result) == ["invalid_idna"]
    assert "not a valid IDNA 2008 label" in finding(result, "invalid_idna")["detail"]


@pytest.mark.parametrize(
    ("host", "rule", "points"),
    [
        ("paypal-login.example", "brand_embedded", 45),
        ("secure-chase-verify.example", "brand_embedded", 45),
        ("paypalsecure.example", "brand_embedded", 40),
        ("paypal.com.evil.example", "brand_domain_in_subdomain", 45),
        ("www.amazon.co.uk.orders.example", "brand_domain_in_subdomain", 45),
        ("paypal.account-verify.example", "brand_in_subdomain", 40),
    ],
)
async def test_brand_in_foreign_domain(host: str, rule: str, points: int) -> None:
    result = await SOURCE.lookup(domain(host))

    assert result.verdict is Verdict.SUSPICIOUS
    assert finding(result, rule)["points"] == points
    assert any(tag.startswith("lexical:brand:") for tag in result.tags)


async def test_brand_without_lure_weak() -> None:
    result = await SOURCE.lookup(domain("amazon-deals.example"))

    assert rules(result) == ["brand_embedded"]
    assert result.data["points"] == 30
    assert result.verdict is Verdict.UNKNOWN
    assert result.tags == ["lexical:brand:amazon"]


@pytest.mark.parametrize("host", DGA_LIKE)
async def test_dga_like_flagged(host: str) -> None:
    result = await SOURCE.lookup(domain(host))

    assert result.verdict is Verdict.SUSPICIOUS
    assert "lexical:dga" in result.tags
    assert "looks machine-generated" in finding(result, "dga")["detail"]


def test_dga_catches_most_random_labels() -> None:
    rng = random.Random(20)
    labels = ["".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(500)]

    caught = sum(dga(make_name(f"{x}.com", f"{x}.com")) is not None for x in labels)

    assert caught / len(labels) >= 0.55


def test_dga_skips_short_labels() -> None:
    assert dga(make_name("xkqjzvb.com", "xkqjzvb.com")) is None


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("a.b.c.d.e.f.example.com", "deep_nesting"),
        ("invoice.zip", "suspicious_tld"),
        ("example.xyz", "suspicious_tld"),
        (f"{'a' * 60}.{'b' * 60}.example.com", "long_name"),
    ],
)
async def test_structure_rule_weak(host: str, rule: str) -> None:
    result = await SOURCE.lookup(domain(host))

    assert rules(result) == [rule]
    assert result.verdict is Verdict.UNKNOWN


async def test_five_subdomain_labels_allowed() -> None:
    result = await SOURCE.lookup(domain("a.b.c.d.e.example.com"))

    assert result.data["findings"] == []


async def test_url_ip_literal_host() -> None:
    observable = url("https://203.0.113.7/a", "203.0.113.7", "documentation")

    result = await SOURCE.lookup(observable)

    assert rules(result) == ["ip_literal_host"]
    assert result.tags == ["lexical:ip-host"]


async def test_url_ipv6_literal_host() -> None:
    result = await SOURCE.lookup(url("http://[2001:db8::1]/", "2001:db8::1", "global"))

    assert rules(result) == ["ip_literal_host"]


async def test_url_userinfo_trick() -> None:
    value = "https://user@paypal.com@evil.example/"

    result = await SOURCE.lookup(url(value, "evil.example"))

    assert rules(result) == ["userinfo"]
    assert "user@paypal.com" in finding(result, "userinfo")["detail"]


async def test_url_lookalike_host() -> None:
    result = await SOURCE.lookup(url("http://paypa1.com/login", "paypa1.com"))

    assert result.verdict is Verdict.SUSPICIOUS
    assert result.tags == ["lexical:lookalike:paypal"]


async def test_url_popular_host_no_findings() -> None:
    value = "https://en.wikipedia.org/wiki/Domain_name"

    result = await SOURCE.lookup(url(value, "en.wikipedia.org"))

    assert result.data["findings"] == []


async def test_result_shape_adds_up() -> None:
    result = await SOURCE.lookup(domain("paypal-login.xyz"))
    findings = result.data["findings"]
    points = sum(f["points"] for f in findings)

    assert result.data["points"] == points
    assert result.score == min(points, 100)
    assert result.confidence is not None
    assert 0 < result.confidence <= 0.8
    assert [f["points"] for f in findings] == sorted(
        (f["points"] for f in findings), reverse=True
    )
    assert all(set(f) == {"rule", "points", "detail"} for f in findings)
    assert result.summary is not None
    assert result.summary.startswith(f"{points} points: ")


async def test_verdict_never_clean_or_malicious() -> None:
    hosts = POPULAR + NEAR_BRANDS + [host for host, _, _ in LOOKALIKES] + DGA_LIKE

    for host in hosts:
        result = await SOURCE.lookup(domain(host))
        assert result.verdict is not Verdict.CLEAN, host
        assert result.verdict is not Verdict.MALICIOUS, host


async def test_no_registered_domain() -> None:
    observable = Observable(
        type=ObservableType.DOMAIN, value="co.uk", input="co.uk", is_public_suffix=True
    )

    result = await SOURCE.lookup(observable)

    assert result.status is Status.OK
    assert result.data["findings"] == []


def test_parse_brands_skips_comments() -> None:
    index = parse_brands("# comment\n\nacme acme.example acme.test  # trailing\n")

    assert index.names == frozenset({"acme"})
    assert index.owns("acme.test")
    assert not index.owns("comment")


def test_typo_variants_keep_first_letter() -> None:
    variants = typo_variants("paypal")

    assert "paypla" in variants
    assert "papal" in variants
    assert "paypao" in variants
    assert "aypal" not in variants
    assert "paypal" not in variants


def test_brand_list_size() -> None:
    assert len(bundled_brands().brands) >= 100


def test_spec_declares_local_source() -> None:
    assert SPEC.name == "lexical"
    assert SPEC.types == frozenset({ObservableType.DOMAIN, ObservableType.URL})
    assert SPEC.weight == 1.0
    assert not SPEC.network
    assert not SPEC.needs_key


async def test_parsed_observables_end_to_end() -> None:
    from iocscope.observables import parse_observable

    suspicious = ["hxxp://paypa1[.]com/login", "p\N{CYRILLIC SMALL LETTER A}ypal.com"]
    for raw in suspicious:
        result = await SOURCE.lookup(parse_observable(raw))
        assert result.verdict is Verdict.SUSPICIOUS, raw
    result = await SOURCE.lookup(parse_observable("https://www.bbc.co.uk/news"))
    assert result.data["findings"] == []


def test_both_sources_load_through_entry_points(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with FeedStore(tmp_path / "feeds.sqlite3") as store:
        context = SourceContext(settings=settings, store=store)
        sources = load_sources(context, only=["address_scope", "lexical"])

    assert sorted(source.spec.name for source in sources) == [
        "address_scope",
        "lexical",
    ]
