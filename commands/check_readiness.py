"""`CheckReadiness`: can the service take leads now (database reachable, schema current)?"""

from __future__ import annotations

from dataclasses import dataclass

from commands.base import Command


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str
    schema_revision: str | None
    expected_revision: str


@dataclass(frozen=True, slots=True)
class CheckReadiness(Command[Readiness]):
    pass
