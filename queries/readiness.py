"""`CheckReadiness`: can the service take leads now (database reachable, schema current)?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from queries.base import Query


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str
    schema_revision: str | None
    expected_revision: str


@dataclass(frozen=True, slots=True)
class CheckReadiness(Query[Readiness]):
    pass


class SchemaProbe(Protocol):
    """Reads the schema revision the database is at (None when unmigrated)."""

    expected_revision: str

    async def current_revision(self) -> str | None: ...


class CheckReadinessHandler:
    def __init__(self, probe: SchemaProbe) -> None:
        self._probe = probe

    async def __call__(self, query: CheckReadiness) -> Readiness:
        expected = self._probe.expected_revision
        current = await self._probe.current_revision()
        if current == expected:
            return Readiness(True, "ready", current, expected)
        reason = "schema_not_migrated" if current is None else "schema_out_of_date"
        return Readiness(False, reason, current, expected)
