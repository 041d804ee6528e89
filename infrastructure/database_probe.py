"""One connection attempt that names a misconfigured database before the first request does.

Used where a wrong password or a missing server should be said once, in one line, with the
fix: the API's startup (a WARNING, web/app.py), the test suite's server resolution (it stops
there).
"""

from __future__ import annotations

import asyncio

import asyncpg

from infrastructure.database_problems import diagnose
from infrastructure.provisioning import asyncpg_dsn


async def connection_error(url: str, timeout_s: float = 10.0) -> BaseException | None:
    """Why one connection to `url` fails, or None when it connects."""
    try:
        connection = await asyncio.wait_for(
            asyncpg.connect(asyncpg_dsn(url), timeout=timeout_s), timeout_s + 1
        )
    except Exception as error:
        return error
    await connection.close()
    return None


async def database_problem(url: str, timeout_s: float = 10.0) -> str | None:
    """The one-line problem with `url` (password hidden), or None when it connects or when
    its failure is not a misconfiguration."""
    error = await connection_error(url, timeout_s)
    problem = None if error is None else diagnose(error)
    return None if problem is None else problem.line(url)
