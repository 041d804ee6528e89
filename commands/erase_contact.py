"""Erasing a person's data (a GDPR Art. 17 or CCPA deletion request) or old leads' data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from commands.base import Command

CriterionKind = Literal["email", "phone", "received_before"]


@dataclass(frozen=True, slots=True)
class ContactErased:
    """How many leads were erased (or, on a dry run, would be); `erasure_id` is the audit row
    (None on a dry run)."""

    leads: int
    dry_run: bool
    erasure_id: int | None


@dataclass(frozen=True, slots=True)
class EraseContact(Command[ContactErased]):
    """Erase the personal data of every lead that matches: the email address or the phone
    number (any formatting: matched normalized; a phone number read in `region`), or a
    receipt before `received_before`; only `source_code`'s leads when given.

    Exactly one of `email`, `phone` and `received_before` is set. Leads are erased in batches
    of `batch_size`, each its own transaction, `pause_s` apart so that the service keeps its
    share of the database and the CPU: an interrupted run keeps what it erased, and running it
    again erases the rest.
    """

    email: str | None = None
    phone: str | None = None
    region: str = "US"
    received_before: datetime | None = None
    source_code: str | None = None
    dry_run: bool = False
    batch_size: int = 1000
    pause_s: float = 0.5
