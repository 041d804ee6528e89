"""Handles `CheckReadiness`: compares the database's schema revision with the code's."""

from __future__ import annotations

from typing import Protocol

from commands.check_readiness import CheckReadiness, Readiness


class SchemaProbe(Protocol):
    """Reads the schema revision the database is at (None when unmigrated)."""

    expected_revision: str

    async def current_revision(self) -> str | None: ...


class CheckReadinessHandler:
    def __init__(self, probe: SchemaProbe) -> None:
        self._probe = probe

    async def __call__(self, command: CheckReadiness) -> Readiness:
        expected = self._probe.expected_revision
        current = await self._probe.current_revision()
        if current == expected:
            return Readiness(True, "ready", current, expected)
        reason = "schema_not_migrated" if current is None else "schema_out_of_date"
        return Readiness(False, reason, current, expected)
