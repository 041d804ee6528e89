"""One connection attempt that names a misconfigured database before the first request does.

Used where a wrong password or a missing server should be said once, in one line, with the
fix: the API's startup (a WARNING), the test suite's server resolution (it stops there).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from infrastructure.database_problems import diagnose

log = logging.getLogger("leads.startup")


def _libpq(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql"))


async def database_problem(url: str, timeout_s: float = 10.0) -> str | None:
    """The one-line problem with `url` (password hidden), or None when it connects or when
    its failure is not a misconfiguration."""
    try:
        connection = await asyncio.wait_for(
            asyncpg.connect(_libpq(url), timeout=timeout_s), timeout_s + 1
        )
    except Exception as error:
        problem = diagnose(error)
        return None if problem is None else problem.line(url)
    await connection.close()
    return None


async def warn_if_misconfigured(url: str, timeout_s: float) -> None:
    """Log one WARNING line when the database at `url` is misconfigured (the service still
    starts: /readyz and requests answer 503 until it is fixed)."""
    line = await database_problem(url, timeout_s)
    if line is not None:
        log.warning("%s", line)
