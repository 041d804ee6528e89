"""What the erasure handler needs from storage, declared here and implemented in infrastructure."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from commands.erase_contact import CriterionKind


@dataclass(frozen=True, slots=True)
class Criterion:
    """Which leads: those whose normalized email or phone is `value`, or received before
    `received_before`; of `source_id` only when it is set. Erased leads never match."""

    kind: CriterionKind
    value: str | None = None
    received_before: datetime | None = None
    source_id: int | None = None


class ErasureStore(Protocol):
    async def source_id(self, code: str) -> int | None:
        """The id of the source of this code, active or not; None when there is none."""

    async def count(self, criterion: Criterion) -> int:
        """How many leads match, not yet erased."""

    async def start(self, criterion: Criterion, criterion_hash: str | None) -> int:
        """Record a new erasure run (its audit row, committed at once); its id."""

    async def erase_batch(self, erasure_id: int, criterion: Criterion, limit: int) -> int:
        """Erase up to `limit` matching leads and count them in the audit row, in one
        transaction; how many it erased."""

    async def finish(self, erasure_id: int) -> None: ...


# Opens an erasure store (a connection) for one command.
OpenErasureStore = Callable[[], AbstractAsyncContextManager[ErasureStore]]
# A keyed hash of a normalized email or phone number, for the audit row.
CriterionHasher = Callable[[CriterionKind, str], str]
