"""What classification binds a lead to: an active source of an active offer, as the catalog
held it at a version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from domain.client_address import Network
from domain.replies import ReplyFormat

T = TypeVar("T")
# What a client's idempotency key reused with another payload gets: the stored lead, or 422.
KeyReuse = Literal["replay", "reject"]
KEY_REUSE_POLICIES: tuple[KeyReuse, ...] = ("replay", "reject")


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    """A value read from the catalog, with the catalog version it was read at (one statement)."""

    value: T
    version: int


@dataclass(frozen=True, slots=True)
class SourceBinding:
    """A source with its offer's bindings and what it asks of the leads it takes (publisher
    intake; the defaults ask nothing). `field_aliases` holds only usable aliases, folded
    name → target (`domain.aliases.usable_aliases`)."""

    source_id: int
    source_key: str | None
    offer_id: int
    market_id: int
    vertical_id: int
    phone_region: str | None
    require_key: bool = False
    allowed_networks: tuple[Network, ...] = ()
    field_aliases: Mapping[str, str] = field(default_factory=dict, hash=False)
    key_reuse: KeyReuse = "replay"
    reply_format: ReplyFormat = ReplyFormat.JSON


@dataclass(frozen=True, slots=True)
class MappedSource:
    path_prefix: str
    source: SourceBinding
