"""The erasure handler on an in-memory store: what it matches, its batches, its audit row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from commands.erase_contact import CriterionKind, EraseContact
from domain.erasure import ErasureError, erasure_email, erasure_phone
from handlers.erase_contact import EraseContactHandler
from handlers.erase_contact_ports import Criterion
from infrastructure.erasure_store import HmacCriterionHasher


@dataclass
class FakeErasureStore:
    matching: int
    sources: dict[str, int] = field(default_factory=lambda: {"acme": 7})
    batches: list[int] = field(default_factory=list)
    audits: list[tuple[Criterion, str | None]] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)

    async def source_id(self, code: str) -> int | None:
        return self.sources.get(code)

    async def count(self, criterion: Criterion) -> int:
        return self.matching

    async def start(self, criterion: Criterion, criterion_hash: str | None) -> int:
        self.audits.append((criterion, criterion_hash))
        return len(self.audits)

    async def erase_batch(self, erasure_id: int, criterion: Criterion, limit: int) -> int:
        erased = min(limit, self.matching)
        self.matching -= erased
        self.batches.append(erased)
        return erased

    async def finish(self, erasure_id: int) -> None:
        self.finished.append(erasure_id)


def handler(store: FakeErasureStore, key: str = "s" * 32) -> EraseContactHandler:
    @asynccontextmanager
    async def open_store() -> AsyncIterator[FakeErasureStore]:
        yield store

    return EraseContactHandler(open_store, HmacCriterionHasher(key))


def test_criteria_are_normalized_as_leads_store_them() -> None:
    assert erasure_email("  Jane.Doe@EXAMPLE.com ") == "jane.doe@example.com"
    assert erasure_phone("(415) 555-2671", "US") == "+14155552671"
    assert erasure_phone("+44 20 7946 0958", "US") == "+442079460958"
    for bad in ("", "   ", "no-at-sign"):
        with pytest.raises(ErasureError):
            erasure_email(bad)
    with pytest.raises(ErasureError):
        erasure_phone("12-34", "US")


async def test_batches_run_until_one_comes_back_short_and_the_run_is_finished() -> None:
    store = FakeErasureStore(matching=5)
    command = EraseContact(email="A@Example.com", batch_size=2, pause_s=0)
    result = await handler(store)(command)
    assert (result.leads, result.dry_run, result.erasure_id) == (5, False, 1)
    assert store.batches == [2, 2, 1] and store.finished == [1]
    criterion, hashed = store.audits[0]
    assert (criterion.kind, criterion.value) == ("email", "a@example.com")
    assert hashed == HmacCriterionHasher("s" * 32)("email", "a@example.com")


async def test_a_dry_run_counts_and_records_nothing() -> None:
    store = FakeErasureStore(matching=3)
    result = await handler(store)(EraseContact(phone="415 555 2671", dry_run=True))
    assert (result.leads, result.dry_run, result.erasure_id) == (3, True, None)
    assert store.audits == [] and store.batches == []


async def test_retention_needs_no_key_and_is_limited_to_the_source() -> None:
    store = FakeErasureStore(matching=0)
    cut_off = datetime(2026, 1, 1, tzinfo=UTC)
    command = EraseContact(received_before=cut_off, source_code="acme")
    result = await handler(store, key="")(command)
    assert result.leads == 0 and store.batches == [0]
    assert store.audits == [(Criterion("received_before", None, cut_off, 7), None)]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (EraseContact(), "give exactly one of"),
        (EraseContact(email="a@example.com", phone="4155552671"), "give exactly one of"),
        (EraseContact(email="a@example.com", batch_size=0), "batch size"),
        (EraseContact(email="a@example.com", pause_s=-1), "cannot be negative"),
        (EraseContact(email="a@example.com", source_code="nope"), "no source has the code"),
    ],
)
async def test_a_command_that_cannot_run_is_refused_before_any_audit_row(
    command: EraseContact, message: str
) -> None:
    store = FakeErasureStore(matching=1)
    with pytest.raises(ErasureError, match=message):
        await handler(store)(command)
    assert store.audits == []


async def test_without_a_key_an_erasure_by_email_records_nothing() -> None:
    store = FakeErasureStore(matching=1)
    with pytest.raises(ErasureError, match="LEADS_ERASURE_KEY is not set"):
        await handler(store, key="")(EraseContact(email="a@example.com"))
    assert store.audits == [] and store.batches == []


def test_the_hash_is_keyed_and_kind_specific() -> None:
    kinds: tuple[CriterionKind, ...] = ("email", "phone")
    one, other = HmacCriterionHasher("a" * 32), HmacCriterionHasher("b" * 32)
    assert one("email", "x") != other("email", "x")
    assert len({one(kind, "x") for kind in kinds}) == 2
