"""Turn per-source results into one risk score, verdict and explanation.

A pure function of its inputs. Each source whose own verdict is malicious or
suspicious adds ``points[verdict] * weight`` to the score; the sum is capped at 100.
Two policy caps then apply, each as its own explanation line with a negative
contribution, so the contributions always add up to ``risk_score`` exactly:

* known-benign: when an allow-list source matched, the score stays below
  ``malicious_at`` unless at least ``benign_override_sources`` sources say malicious;
* non-routable: a private, documentation or otherwise special-purpose address is
  never scored malicious.

``clean`` needs at least one source that answered ``clean`` and no flag; a
``not_found`` is neither a malicious nor a clean signal. Anything else below
``suspicious_at`` is ``unknown``: a weak flag is not a clean bill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from iocscope.models import (
    ANSWERED,
    Explanation,
    PolicyInfo,
    SourceResult,
    Status,
    Verdict,
)


@dataclass(frozen=True)
class ScoringPolicy:
    name: str = "default"
    version: int = 1
    malicious_at: int = 75
    suspicious_at: int = 40
    # Points one flag of a weight-1.0 source adds, by the source's own verdict.
    points: Mapping[Verdict, int] = field(
        default_factory=lambda: {Verdict.MALICIOUS: 75, Verdict.SUSPICIOUS: 40}
    )
    # Malicious sources needed to score a known-benign observable as malicious.
    benign_override_sources: int = 3

    def info(self) -> PolicyInfo:
        return PolicyInfo(
            name=self.name,
            version=self.version,
            malicious_at=self.malicious_at,
            suspicious_at=self.suspicious_at,
        )


@dataclass(frozen=True)
class Assessment:
    risk_score: int
    verdict: Verdict
    confidence: float | None
    explanation: list[Explanation]
    tags: list[str]


def assess(
    results: Mapping[str, SourceResult],
    weights: Mapping[str, float],
    policy: ScoringPolicy,
    *,
    scope: str | None = None,
) -> Assessment:
    """Score ``results`` (source name -> result) under ``policy``.

    ``weights`` maps source names to their weight (1.0 when absent). ``scope`` is
    the observable's address scope; anything but None or "global" is non-routable.
    """
    explanation = _flag_contributions(results, weights, policy)
    raw = sum(line.contribution for line in explanation)
    score = min(raw, 100)
    if raw > 100:
        explanation.append(
            Explanation(source="policy", contribution=100 - raw, reason="capped at 100")
        )
    score = _apply_benign_cap(score, results, policy, explanation)
    score = _apply_scope_cap(score, scope, policy, explanation)
    return Assessment(
        risk_score=score,
        verdict=_verdict(score, results, policy),
        confidence=_confidence(results),
        explanation=explanation,
        tags=_tags(results),
    )


def _flag_contributions(
    results: Mapping[str, SourceResult],
    weights: Mapping[str, float],
    policy: ScoringPolicy,
) -> list[Explanation]:
    lines = []
    for name in sorted(results):
        result = results[name]
        if not result.flagged or result.verdict is None:
            continue
        weight = weights.get(name, 1.0)
        points = round(policy.points.get(result.verdict, 0) * weight)
        if points <= 0:
            continue
        summary = result.summary or f"reported {result.verdict.value}"
        reason = f"{result.verdict.value} (weight {weight:g}): {summary}"
        lines.append(Explanation(source=name, contribution=points, reason=reason))
    return lines


def _apply_benign_cap(
    score: int,
    results: Mapping[str, SourceResult],
    policy: ScoringPolicy,
    explanation: list[Explanation],
) -> int:
    allow_lists = [
        name
        for name, result in sorted(results.items())
        if result.status is Status.OK and result.known_benign
    ]
    if not allow_lists:
        return score
    malicious = sum(
        1 for r in results.values() if r.flagged and r.verdict is Verdict.MALICIOUS
    )
    ceiling = policy.malicious_at - 1
    if score <= ceiling or malicious >= policy.benign_override_sources:
        explanation.append(
            Explanation(
                source=allow_lists[0],
                contribution=0,
                reason="known-benign list match; no cap needed"
                if score <= ceiling
                else f"known-benign, but {malicious} sources say malicious",
            )
        )
        return score
    explanation.append(
        Explanation(
            source=allow_lists[0],
            contribution=ceiling - score,
            reason=(
                f"known-benign: capped below malicious ({ceiling}) because fewer "
                f"than {policy.benign_override_sources} sources say malicious"
            ),
        )
    )
    return ceiling


def _apply_scope_cap(
    score: int, scope: str | None, policy: ScoringPolicy, explanation: list[Explanation]
) -> int:
    if scope is None or scope == "global":
        return score
    ceiling = policy.malicious_at - 1
    if score <= ceiling:
        explanation.append(
            Explanation(
                source="policy",
                contribution=0,
                reason=f"non-routable ({scope} address): external sources skipped",
            )
        )
        return score
    explanation.append(
        Explanation(
            source="policy",
            contribution=ceiling - score,
            reason=f"non-routable ({scope} address): never scored malicious",
        )
    )
    return ceiling


def _verdict(
    score: int, results: Mapping[str, SourceResult], policy: ScoringPolicy
) -> Verdict:
    if score >= policy.malicious_at:
        return Verdict.MALICIOUS
    if score >= policy.suspicious_at:
        return Verdict.SUSPICIOUS
    answered = [r for r in results.values() if r.status in ANSWERED]
    if not answered or any(r.flagged for r in answered):
        return Verdict.UNKNOWN
    # Only an explicit clean result vouches for an observable. "Not in this list"
    # (not_found) and context-only results (a Tor exit, an address-scope note) are
    # neither a malicious nor a clean signal.
    vouching = [r for r in answered if r.verdict is Verdict.CLEAN]
    return Verdict.CLEAN if vouching else Verdict.UNKNOWN


def _confidence(results: Mapping[str, SourceResult]) -> float | None:
    values = [r.confidence for r in results.values() if r.flagged and r.confidence]
    if not values:
        return None
    return round(sum(values) / len(values), 2)


def _tags(results: Mapping[str, SourceResult]) -> list[str]:
    tags: dict[str, None] = {}
    for name in sorted(results):
        result = results[name]
        if result.status is Status.OK:
            tags.update(dict.fromkeys(result.tags))
    return list(tags)
