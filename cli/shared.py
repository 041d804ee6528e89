"""What the `leads` verbs share."""

from __future__ import annotations

from typing import TypeVar

from commands.base import Command
from infrastructure.container import bootstrap

# `leads import` words its database failures with this.
from infrastructure.database_problems import diagnosed_line as diagnosed_line
from infrastructure.settings import Settings

R = TypeVar("R")


async def execute(command: Command[R]) -> R:
    """Run one command on a freshly built application, then release it."""
    application = bootstrap(Settings.from_env())
    try:
        return await application.bus.execute(command)
    finally:
        await application.close()
