"""Statements and database round trips per new lead and per replay (bench/roundtrips.py counts
them in-process, by asyncpg's query logger and on the wire)."""

from __future__ import annotations

import asyncio
from typing import Any

from bench import roundtrips, workload
from bench.console import log
from bench.context import Bench


def run(bench: Bench) -> dict[str, Any]:
    log("counting statements and round trips (in-process app, wire proxy)")
    return asyncio.run(roundtrips.count(bench.database.url, workload.SOURCE_KEY, bench.nonce))
