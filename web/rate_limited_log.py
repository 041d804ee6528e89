"""Warnings that would repeat on every request, logged at most once per cause per interval."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Seen:
    logged_at: float
    left_out: int = 0


class RateLimitedLog:
    """At most one line per `key` every `interval_s`; the next one says how many were left out.

    A misconfigured or unreachable database fails every request the same way: one line a
    minute per cause tells the operator as much as a thousand, and keeps the log readable.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def warning(self, key: str, message: str, *args: object) -> bool:
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.logged_at < self._interval_s:
            seen.left_out += 1
            return False
        self._seen[key] = _Seen(now)
        if seen is not None and seen.left_out:
            message += " (%d more since the last such line)"
            args = (*args, seen.left_out)
        self._logger.warning(message, *args)
        return True
