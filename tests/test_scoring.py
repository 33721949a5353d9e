"""Scoring: a pure function from per-source results to score, verdict and reasons."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iocscope.models import SourceResult, Status, Verdict
from iocscope.scoring import ScoringPolicy, assess

POLICY = ScoringPolicy()


def flag(verdict: Verdict, summary: str = "listed") -> SourceResult:
    return SourceResult(status=Status.OK, verdict=verdict, summary=summary)


def benign() -> SourceResult:
    return SourceResult(status=Status.OK, verdict=Verdict.CLEAN, known_benign=True)


def test_single_malicious_source_is_malicious() -> None:
    result = assess({"feed": flag(Verdict.MALICIOUS)}, {}, POLICY)
    assert result.risk_score == 75
    assert result.verdict is Verdict.MALICIOUS


def test_single_suspicious_source_is_suspicious() -> None:
    result = assess({"feed": flag(Verdict.SUSPICIOUS)}, {}, POLICY)
    assert result.risk_score == 40
    assert result.verdict is Verdict.SUSPICIOUS


def test_weight_scales_contribution() -> None:
    result = assess({"feed": flag(Verdict.MALICIOUS)}, {"feed": 0.6}, POLICY)
    assert result.risk_score == 45
    assert result.verdict is Verdict.SUSPICIOUS


def test_weak_flag_is_unknown_not_clean() -> None:
    results = {"lexical": flag(Verdict.SUSPICIOUS), "vendor": flag(Verdict.CLEAN)}
    result = assess(results, {"lexical": 0.5}, POLICY)
    assert result.risk_score == 20
    assert result.verdict is Verdict.UNKNOWN


def test_not_found_alone_is_unknown() -> None:
    result = assess({"feed": SourceResult.not_found()}, {}, POLICY)
    assert result.verdict is Verdict.UNKNOWN


def test_clean_answer_makes_clean() -> None:
    result = assess({"vendor": flag(Verdict.CLEAN)}, {}, POLICY)
    assert result.verdict is Verdict.CLEAN
    assert result.risk_score == 0


def test_no_answer_is_unknown() -> None:
    failed = SourceResult(status=Status.ERROR, reason="upstream returned 500")
    result = assess({"vendor": failed}, {}, POLICY)
    assert result.verdict is Verdict.UNKNOWN


def test_failed_source_is_left_out() -> None:
    limited = SourceResult(
        status=Status.RATE_LIMITED, verdict=Verdict.MALICIOUS, retry_after_s=60
    )
    result = assess({"vendor": limited}, {}, POLICY)
    assert result.risk_score == 0


def test_score_caps_at_hundred() -> None:
    results = {f"feed{i}": flag(Verdict.MALICIOUS) for i in range(3)}
    result = assess(results, {}, POLICY)
    assert result.risk_score == 100
    assert sum(line.contribution for line in result.explanation) == 100


def test_known_benign_caps_one_source() -> None:
    results = {"feed": flag(Verdict.MALICIOUS), "known_benign": benign()}
    result = assess(results, {}, POLICY)
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.risk_score == POLICY.malicious_at - 1


def test_known_benign_caps_low_weight_source() -> None:
    results = {
        "weak": flag(Verdict.MALICIOUS),
        "other": flag(Verdict.MALICIOUS),
        "known_benign": benign(),
    }
    result = assess(results, {"weak": 0.3}, POLICY)
    assert result.verdict is not Verdict.MALICIOUS


def test_many_sources_override_benign() -> None:
    results = {f"feed{i}": flag(Verdict.MALICIOUS) for i in range(3)}
    results["known_benign"] = benign()
    result = assess(results, {}, POLICY)
    assert result.verdict is Verdict.MALICIOUS


def test_non_routable_never_malicious() -> None:
    results = {f"feed{i}": flag(Verdict.MALICIOUS) for i in range(3)}
    result = assess(results, {}, POLICY, scope="private")
    assert result.verdict is Verdict.SUSPICIOUS
    assert any("non-routable" in line.reason for line in result.explanation)


def test_thresholds_are_data() -> None:
    strict = ScoringPolicy(malicious_at=90, suspicious_at=70)
    result = assess({"feed": flag(Verdict.MALICIOUS)}, {}, strict)
    assert result.verdict is Verdict.SUSPICIOUS


def test_tags_merge_in_source_order() -> None:
    a = SourceResult(status=Status.OK, verdict=Verdict.MALICIOUS, tags=["x", "y"])
    b = SourceResult(status=Status.OK, verdict=Verdict.UNKNOWN, tags=["y", "tor-exit"])
    result = assess({"a": a, "b": b}, {}, POLICY)
    assert result.tags == ["x", "y", "tor-exit"]


VERDICTS = st.sampled_from(list(Verdict))
STATUSES = st.sampled_from(list(Status))
RESULTS = st.builds(
    SourceResult,
    status=STATUSES,
    verdict=st.none() | VERDICTS,
    known_benign=st.booleans(),
)


@given(
    results=st.dictionaries(st.text(min_size=1, max_size=8), RESULTS, max_size=8),
    weight=st.floats(min_value=0.0, max_value=2.0),
    scope=st.sampled_from([None, "global", "private", "documentation"]),
)
def test_explanation_adds_up(
    results: dict[str, SourceResult], weight: float, scope: str | None
) -> None:
    weights = dict.fromkeys(results, weight)
    result = assess(results, weights, POLICY, scope=scope)
    assert sum(line.contribution for line in result.explanation) == result.risk_score
    assert 0 <= result.risk_score <= 100


@pytest.mark.parametrize("scope", ["private", "loopback", "documentation"])
def test_non_routable_reason_even_without_flags(scope: str) -> None:
    result = assess({"feed": SourceResult.not_found()}, {}, POLICY, scope=scope)
    assert result.risk_score == 0
    assert any(scope in line.reason for line in result.explanation)
