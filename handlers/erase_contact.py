"""Handles `EraseContact`: matched leads erased in batches, one audit row per run."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from commands.erase_contact import ContactErased, EraseContact
from domain.erasure import ErasureError, erasure_email, erasure_phone
from handlers.erase_contact_ports import Criterion, CriterionHasher, OpenErasureStore


class EraseContactHandler:
    def __init__(self, open_store: OpenErasureStore, hasher: CriterionHasher) -> None:
        self._open_store = open_store
        self._hasher = hasher

    async def __call__(self, command: EraseContact) -> ContactErased:
        given = [c for c in (command.email, command.phone, command.received_before) if c]
        if len(given) != 1:
            raise ErasureError("give exactly one of an email, a phone number or a cut-off")
        if command.batch_size < 1:
            raise ErasureError("the batch size must be at least 1")
        if command.pause_s < 0:
            raise ErasureError("the pause between batches cannot be negative")
        if command.email is not None:
            criterion = Criterion("email", erasure_email(command.email))
        elif command.phone is not None:
            criterion = Criterion("phone", erasure_phone(command.phone, command.region))
        else:
            criterion = Criterion("received_before", received_before=command.received_before)
        async with self._open_store() as store:
            if command.source_code is not None:
                source_id = await store.source_id(command.source_code)
                if source_id is None:
                    raise ErasureError(f"no source has the code {command.source_code!r}")
                criterion = replace(criterion, source_id=source_id)
            if command.dry_run:
                return ContactErased(await store.count(criterion), True, None)
            value = criterion.value
            erasure_id = await store.start(
                criterion, None if value is None else self._hasher(criterion.kind, value)
            )
            total = 0
            while True:
                erased = await store.erase_batch(erasure_id, criterion, command.batch_size)
                total += erased
                if erased < command.batch_size:
                    break
                await asyncio.sleep(command.pause_s)
            await store.finish(erasure_id)
            return ContactErased(total, False, erasure_id)
