"""The command bus: the one entry point the web layer and the CLI call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from commands.base import Command

R = TypeVar("R")
Handler = Callable[[Any], Awaitable[Any]]


class UnknownCommand(LookupError):
    pass


class CommandBus:
    """Dispatches a command to the handler registered for its exact type.

    Handlers are built once by `resolve` (the container) on first use and then reused, so
    dispatch costs one dict lookup per command.
    """

    def __init__(
        self,
        handler_types: Mapping[type[Command[Any]], type[Any]],
        resolve: Callable[[type[Any]], Any],
    ) -> None:
        self._handler_types = dict(handler_types)
        self._resolve = resolve
        self._handlers: dict[type[Command[Any]], Handler] = {}

    def handler_for(self, command_type: type[Command[Any]]) -> Handler:
        handler = self._handlers.get(command_type)
        if handler is None:
            try:
                handler_type = self._handler_types[command_type]
            except KeyError:
                raise UnknownCommand(f"no handler registered for {command_type.__name__}") from None
            handler = self._handlers[command_type] = self._resolve(handler_type)
        return handler

    async def execute(self, command: Command[R]) -> R:
        result: R = await self.handler_for(type(command))(command)
        return result
