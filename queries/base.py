"""Queries: read-only questions, answered without the command bus or a unit of work.

A query is a frozen dataclass naming the view it returns (`Query[R]`); its handler is a small
class whose constructor takes the reader port it needs, wired by the composition root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Q = TypeVar("Q")


class Query(Generic[R_co]):
    """Marker base: subclasses are frozen dataclasses named as questions (`CheckCatalog`)."""

    __slots__ = ()


QueryHandler = Callable[[Q], Awaitable[R]]


class UnknownQuery(LookupError):
    pass


class QueryDispatcher:
    def __init__(self, handlers: Mapping[type[Query[Any]], QueryHandler[Any, Any]]) -> None:
        self._handlers = dict(handlers)

    def handler_for(self, query_type: type[Query[Any]]) -> QueryHandler[Any, Any]:
        try:
            return self._handlers[query_type]
        except KeyError:
            raise UnknownQuery(f"no handler registered for {query_type.__name__}") from None

    async def ask(self, query: Query[R]) -> R:
        result: R = await self.handler_for(type(query))(query)
        return result
