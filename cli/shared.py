"""What the `leads` verbs share."""

from __future__ import annotations

from typing import TypeVar

from commands.base import Command
from infrastructure.container import bootstrap
from infrastructure.settings import Settings
from queries.base import Query

R = TypeVar("R")


async def execute(message: Command[R] | Query[R], settings: Settings | None = None) -> R:
    """Run one command or answer one query on a freshly built application, then release it."""
    application = bootstrap(settings or Settings.from_env())
    try:
        if isinstance(message, Command):
            return await application.bus.execute(message)
        return await application.query(message)
    finally:
        await application.close()
