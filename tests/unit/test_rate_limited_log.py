"""Repeated warnings: once per cause per interval, with the count of those left out."""

from __future__ import annotations

import logging

import pytest

from web.rate_limited_log import RateLimitedLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_cause_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RateLimitedLog(logging.getLogger("test.rate"), interval_s=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.rate"):
        assert log.warning("database_missing", "missing: %s", "db1")
        for _ in range(500):
            assert not log.warning("database_missing", "missing: %s", "db1")
        assert log.warning("authentication_failed", "auth")  # another cause: its own line
        clock.now += 59.9
        assert not log.warning("database_missing", "missing: %s", "db1")
        clock.now += 0.1
        assert log.warning("database_missing", "missing: %s", "db1")
        clock.now += 60
        assert log.warning("database_missing", "missing: %s", "db1")
    assert [r.getMessage() for r in caplog.records] == [
        "missing: db1",
        "auth",
        "missing: db1 (501 more since the last such line)",
        "missing: db1",
    ]
    assert {r.levelno for r in caplog.records} == {logging.WARNING}
