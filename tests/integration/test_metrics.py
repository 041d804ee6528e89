"""GET /metrics: outcomes by error code, latency histogram, pool gauges."""

from __future__ import annotations

import re

import httpx

from tests.support import Catalog


def _value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_metrics_count_outcomes_and_expose_the_pool(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await catalog.source()
    before = (await client.get("/metrics")).text
    body = {"source_id": source.source_id, "email": "m@x.co"}
    await client.post("/api/leads", json=body)
    await client.post("/api/leads", json=body)
    await client.post("/api/leads", json={"source_key": "no-such-source", "email": "m@x.co"})
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    for sample, delta in (
        ('leads_ingest_requests_total{code="",outcome="created"}', 1),
        ('leads_ingest_requests_total{code="",outcome="replayed"}', 1),
        ('leads_ingest_requests_total{code="invalid_source_key",outcome="rejected"}', 1),
        ("leads_ingest_duration_seconds_count", 3),
    ):
        assert _value(after, sample) - _value(before, sample) == delta, sample
    assert _value(after, "leads_db_pool_size") >= 1
    assert "leads_db_pool_checked_out" in after
