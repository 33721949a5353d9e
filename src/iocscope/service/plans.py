"""Plans and credit costs, kept as data so that settings can replace them.

The default plans are modelled on common free and paid tiers of hosted
threat-intelligence APIs. Settings override them with a ``service_plans`` table
and the per-type costs with ``service_credit_costs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iocscope.config import Settings
from iocscope.models import ObservableType


@dataclass(frozen=True)
class Plan:
    name: str
    # Credits a tenant may spend per calendar month (UTC).
    monthly_credits: int
    # Requests a tenant may make per minute, over all of its keys.
    requests_per_minute: int


DEFAULT_PLANS: Mapping[str, Plan] = {
    "free": Plan("free", monthly_credits=100, requests_per_minute=10),
    "team": Plan("team", monthly_credits=500, requests_per_minute=60),
    "business": Plan("business", monthly_credits=2_500, requests_per_minute=300),
}

# Credits one lookup costs, by observable type.
DEFAULT_COSTS: Mapping[ObservableType, int] = {
    ObservableType.IP: 3,
    ObservableType.DOMAIN: 3,
    ObservableType.URL: 4,
    ObservableType.MD5: 4,
    ObservableType.SHA1: 4,
    ObservableType.SHA256: 4,
    ObservableType.SHA512: 4,
    ObservableType.EMAIL: 5,
    ObservableType.CIDR: 5,
}

# A lookup that every queried source answered from the cache costs this much.
CACHE_HIT_COST = 1


@dataclass(frozen=True)
class PlanBook:
    """The plans and costs in force for one service process."""

    plans: Mapping[str, Plan]
    costs: Mapping[ObservableType, int]

    def plan(self, name: str) -> Plan:
        """Return the named plan, or the free plan for a name no longer configured."""
        found = self.plans.get(name)
        if found is not None:
            return found
        return self.plans.get("free", DEFAULT_PLANS["free"])

    def cost(self, observable_type: ObservableType) -> int:
        return self.costs.get(observable_type, max(DEFAULT_COSTS.values()))

    @property
    def cheapest(self) -> int:
        return min(self.costs.values(), default=1)


def load_plan_book(settings: Settings) -> PlanBook:
    """Build the plan book from settings, falling back to the defaults."""
    raw_plans: Mapping[str, Any] = getattr(settings, "service_plans", None) or {}
    plans = dict(DEFAULT_PLANS)
    for name, fields in raw_plans.items():
        plans[name] = _plan_from(name, fields)
    raw_costs: Mapping[str, int] = getattr(settings, "service_credit_costs", None) or {}
    costs = dict(DEFAULT_COSTS)
    for type_name, cost in raw_costs.items():
        costs[ObservableType(type_name)] = int(cost)
    return PlanBook(plans=plans, costs=costs)


def _plan_from(name: str, fields: Any) -> Plan:
    if isinstance(fields, Plan):
        return fields
    return Plan(
        name=name,
        monthly_credits=int(fields["monthly_credits"]),
        requests_per_minute=int(fields["requests_per_minute"]),
    )
