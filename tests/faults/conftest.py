"""Fixtures of the fault-injection tests: a PostgreSQL cluster each test owns and may break."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.local_postgres import LocalPostgres
from tests.faults.harness import new_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalPostgres]:
    """A cluster of the test's own, initialized but not started; removed afterwards."""
    cluster = new_cluster(tmp_path)
    cluster.init()
    try:
        yield cluster
    finally:
        cluster.remove()
