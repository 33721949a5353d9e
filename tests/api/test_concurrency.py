"""Many concurrent clients on one key: exact credits, exact 429s, no 5xx."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.api.conftest import StartService

CLIENTS = 50
LOOKUPS_PER_CLIENT = 4
PER_MINUTE = 150
CREDITS = 300
IP_COST = 3


async def _client(url: str, key: str, client_no: int) -> list[int]:
    statuses = []
    async with httpx.AsyncClient(
        base_url=url, timeout=60, headers={"X-API-Key": key}
    ) as client:
        for n in range(LOOKUPS_PER_CLIENT):
            body = {"value": f"198.51.{client_no}.{n + 1}", "refresh": True}
            response = await client.post("/v1/ioc/enrich", json=body)
            statuses.append(response.status_code)
    return statuses


async def _run_all(url: str, key: str) -> Counter[int]:
    batches = await asyncio.gather(*(_client(url, key, n) for n in range(CLIENTS)))
    return Counter(status for batch in batches for status in batch)


def test_concurrent_clients_charge_exactly(start_service: StartService) -> None:
    plan = {"monthly_credits": CREDITS, "requests_per_minute": PER_MINUTE}
    service = start_service(service_plans={"load": plan})
    key = service.create_key("load-tenant", "load")

    statuses = asyncio.run(_run_all(service.url, key))

    total = CLIENTS * LOOKUPS_PER_CLIENT
    assert sum(statuses.values()) == total
    assert not [code for code in statuses if code >= 500]
    # The plan admits PER_MINUTE requests; credits pay for CREDITS // IP_COST.
    assert statuses[429] == total - PER_MINUTE
    assert statuses[200] == CREDITS // IP_COST
    assert statuses[402] == PER_MINUTE - CREDITS // IP_COST
    usage = httpx.get(f"{service.url}/v1/usage", headers={"X-API-Key": key})
    # /v1/usage is itself over the limit now; its credit headers still count.
    assert usage.headers["X-Credits-Used"] == str(statuses[200] * IP_COST)
    assert service.total_calls == statuses[200] * 2
