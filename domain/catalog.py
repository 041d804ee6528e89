"""The classification catalog as operators declare it: typed records, parsing and validation.

A catalog document (YAML or JSON, already parsed into plain values) becomes typed entries
here. Source keys, hostnames and path prefixes are canonicalized with the functions
classification uses (SPEC §5), so what the catalog stores is exactly what requests compare
with. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import phonenumbers

from domain.aliases import is_known_field_name, usable_aliases
from domain.classification import (
    SOURCE_KEY_PATTERN,
    canonical_hostname,
    canonical_path_prefix,
    canonical_source_key,
    prefix_matches,
)
from domain.client_address import NetworkError, canonical_network
from domain.errors import LeadError
from domain.fields import ALIAS_TARGETS, SELECTOR_FIELDS, fold_field_name
from domain.replies import REPLY_FORMATS, ReplyFormat
from domain.sources import KEY_REUSE_POLICIES, KeyReuse

SECTIONS: tuple[str, ...] = ("markets", "verticals", "offers", "sources", "mappings")
# The ingestion endpoint; every sub-path of it also takes leads (SPEC §6).
LEADS_PATH = "/api/leads"
# A key that guards a source on its own must not be guessable (`require_key`).
MIN_REQUIRED_KEY_LENGTH = 16


class CatalogError(ValueError):
    """A catalog document or entry that cannot be applied; `entry` and `field` say where."""

    def __init__(self, entry: str, field: str | None, problem: str) -> None:
        self.entry = entry
        self.field = field
        self.problem = problem
        where = entry if field is None else f"{entry}: {field}"
        super().__init__(f"{where}: {problem}")


class CatalogEntryNotFound(CatalogError):
    """A command named a catalog entry that does not exist."""


@dataclass(frozen=True, slots=True)
class Market:
    code: str
    name: str
    phone_region: str | None = None


@dataclass(frozen=True, slots=True)
class Vertical:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Offer:
    code: str
    name: str
    market: str
    vertical: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class Source:
    """A source of leads and how it must post them.

    `require_key`: every lead must carry `source_key`, however the source is selected.
    `allowed_networks`: canonical CIDRs the client address must be in (empty: any).
    `field_aliases`: (publisher's folded field name, our field name) pairs, sorted.
    `key_reuse`: a client's idempotency key reused with another payload replays the stored
    lead (`replay`) or is refused with 422 (`reject`).
    `reply_format`: the format of its answers when the request's `Accept` leaves the choice
    (domain/replies.py).
    """

    code: str
    name: str
    offer: str
    source_key: str | None = None
    active: bool = True
    require_key: bool = False
    allowed_networks: tuple[str, ...] = ()
    field_aliases: tuple[tuple[str, str], ...] = ()
    key_reuse: KeyReuse = "replay"
    reply_format: ReplyFormat = ReplyFormat.JSON

    @property
    def aliases(self) -> dict[str, str]:
        """The usable field aliases, as `apply_aliases` takes them."""
        return usable_aliases(self.field_aliases)


@dataclass(frozen=True, slots=True)
class HttpMapping:
    """An HTTP mapping, identified by its source and canonical hostname and path prefix."""

    source: str
    hostname: str
    path_prefix: str = "/"
    active: bool = True

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.source, self.hostname, self.path_prefix)

    @property
    def label(self) -> str:
        return f"{self.source} {self.hostname}{self.path_prefix}"


Record = TypeVar("Record", Market, Vertical, Offer, Source, HttpMapping)


@dataclass(frozen=True, slots=True)
class Entry(Generic[Record]):
    """One entry of a document: where it is (for messages), what it says, what it left out.

    An optional field the entry leaves out keeps its stored value (its default when the entry
    is new); an explicit `null` clears it.
    """

    label: str
    record: Record
    omitted: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CatalogDocument:
    markets: tuple[Entry[Market], ...] = ()
    verticals: tuple[Entry[Vertical], ...] = ()
    offers: tuple[Entry[Offer], ...] = ()
    sources: tuple[Entry[Source], ...] = ()
    mappings: tuple[Entry[HttpMapping], ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """The stored catalog, entries referring to each other by code, as the database holds it."""

    markets: tuple[Market, ...] = ()
    verticals: tuple[Vertical, ...] = ()
    offers: tuple[Offer, ...] = ()
    sources: tuple[Source, ...] = ()
    mappings: tuple[HttpMapping, ...] = ()
    source_ids: Mapping[str, int] = field(default_factory=dict)


# --- reading a document ----------------------------------------------------------------

_MISSING = object()


def _type_hint(value: object) -> str:
    # YAML reads `no`, `on`, `1e3`, `0123` as booleans and numbers: say so, or the message
    # about a market coded `no` (Norway) is baffling.
    if isinstance(value, bool | int | float):
        return f" (got the {type(value).__name__} {value!r}: in YAML, quote the value)"
    return ""


_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _has_control_characters(text: str) -> bool:
    return _CONTROL_CHARACTERS.search(text) is not None


@dataclass(frozen=True, slots=True)
class _Fields:
    """The fields of one kind of entry.

    `kept`: optional, and when left out the stored value stays. `defaulted`: optional, part
    of the entry's identity, so leaving it out means its default.
    """

    required: tuple[str, ...]
    kept: tuple[str, ...] = ()
    defaulted: tuple[str, ...] = ()


class _EntryReader:
    """Reads the fields of one raw entry, raising `CatalogError` that names entry and field."""

    def __init__(self, section: str, number: int, raw: object, fields: _Fields) -> None:
        self.label = f"{section} #{number}"
        if not isinstance(raw, Mapping):
            raise CatalogError(self.label, None, "must be a mapping of field names to values")
        self._raw: Mapping[object, object] = raw
        self.omitted = frozenset(name for name in fields.kept if name not in raw)
        identifier = raw.get("source" if section == "mappings" else "code")
        if isinstance(identifier, str) and identifier.strip():
            self.label += f' "{identifier.strip()}"'
        allowed = (*fields.required, *fields.kept, *fields.defaulted)
        for name in raw:
            if name not in allowed:
                raise CatalogError(
                    self.label, str(name), f"unknown field (expected: {', '.join(allowed)})"
                )
        for name in fields.required:
            if name not in raw or raw[name] is None:
                raise CatalogError(self.label, name, "is required")

    def error(self, name: str, problem: str) -> CatalogError:
        return CatalogError(self.label, name, problem)

    def value(self, name: str) -> object:
        return self._raw.get(name, _MISSING)

    def text(self, name: str, default: str = "") -> str:
        value = self.value(name)
        if value is _MISSING or (value is None and default):
            return default
        if not isinstance(value, str):
            raise self.error(name, "must be a string" + _type_hint(value))
        text = value.strip()
        if not text:
            raise self.error(name, "must not be empty")
        if _has_control_characters(text):
            raise self.error(name, "must not contain control characters or lone surrogates")
        return text

    def optional_text(self, name: str, canonical: Callable[[str], str]) -> str | None:
        """A nullable string field, canonicalized; None when null or omitted."""
        value = self.value(name)
        if value is _MISSING or value is None:
            return None
        return canonical(self.text(name))

    def flag(self, name: str, default: bool = True) -> bool:
        value = self.value(name)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.error(name, "must be true or false")
        return value


def canonical_phone_region(region: str) -> str:
    """An ISO 3166-1 alpha-2 code in upper case that `phonenumbers` can parse numbers for."""
    canonical = region.strip().upper()
    if canonical not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(region)
    return canonical


def _phone_region(reader: _EntryReader) -> str | None:
    def canonical(region: str) -> str:
        try:
            return canonical_phone_region(region)
        except ValueError:
            raise reader.error(
                "phone_region",
                "must be a two-letter region code that phonenumbers supports "
                "(e.g. US, GB, DE), or null",
            ) from None

    return reader.optional_text("phone_region", canonical)


def _source_key(reader: _EntryReader) -> str | None:
    def canonical(key: str) -> str:
        try:
            return canonical_source_key(key)
        except LeadError:
            # Never echo the key: it is a secret.
            raise reader.error(
                "source_key",
                f"must match {SOURCE_KEY_PATTERN} after NFKC normalization, "
                "trimming and lower-casing",
            ) from None

    return reader.optional_text("source_key", canonical)


def _allowed_networks(reader: _EntryReader) -> tuple[str, ...]:
    name = "allowed_networks"
    value = reader.value(name)
    if value is _MISSING or value is None:
        return ()
    if not isinstance(value, list):
        raise reader.error(name, "must be a list of networks such as [203.0.113.0/24]")
    networks: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise reader.error(name, "each network must be a string" + _type_hint(item))
        try:
            network = canonical_network(item)
        except NetworkError as error:
            raise reader.error(name, str(error)) from None
        if network in networks:
            raise reader.error(name, f"{network} is listed twice")
        networks.append(network)
    return tuple(networks)


def _field_aliases(reader: _EntryReader) -> tuple[tuple[str, str], ...]:
    name = "field_aliases"
    value = reader.value(name)
    if value is _MISSING or value is None:
        return ()
    if not isinstance(value, Mapping):
        raise reader.error(
            name, "must be a mapping of the publisher's field names to ours (fname: first_name)"
        )
    aliases: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for alias, target in value.items():
        if not isinstance(alias, str) or not alias.strip():
            raise reader.error(name, "each alias must be a non-empty string" + _type_hint(alias))
        alias = alias.strip()
        if _has_control_characters(alias):
            raise reader.error(name, "aliases must not contain control characters")
        if is_known_field_name(alias):
            raise reader.error(name, f'"{alias}" is already a field name; it cannot be an alias')
        folded = fold_field_name(alias)
        if folded in spelled:
            raise reader.error(
                name, f'"{alias}" is the same name as "{spelled[folded]}" (names ignore case)'
            )
        if not isinstance(target, str):
            raise reader.error(
                name, f'"{alias}": the target must be a field name' + _type_hint(target)
            )
        canonical = fold_field_name(target.strip())
        if canonical in SELECTOR_FIELDS:
            raise reader.error(
                name,
                f'"{alias}": {canonical} cannot be a target: it selects the source, so it is '
                "read before the source's aliases are known",
            )
        if canonical not in ALIAS_TARGETS:
            raise reader.error(
                name, f'"{alias}": the target must be one of {", ".join(ALIAS_TARGETS)}'
            )
        spelled[folded] = alias
        aliases[folded] = canonical
    return tuple(sorted(aliases.items()))


def _hostname(reader: _EntryReader) -> str:
    hostname = canonical_hostname(reader.text("hostname"))
    if hostname is None or ("." not in hostname.strip("[]") and ":" not in hostname):
        raise reader.error(
            "hostname",
            "must be a host name such as leads.example.com (no scheme, no path)",
        )
    return hostname


def _path_prefix(reader: _EntryReader) -> str:
    prefix = reader.text("path_prefix", default="/")
    if "?" in prefix or "#" in prefix:
        raise reader.error("path_prefix", "must be a path, without a query or fragment")
    return canonical_path_prefix(prefix)


def _market(reader: _EntryReader) -> Market:
    return Market(reader.text("code"), reader.text("name"), _phone_region(reader))


def _vertical(reader: _EntryReader) -> Vertical:
    return Vertical(reader.text("code"), reader.text("name"))


def _offer(reader: _EntryReader) -> Offer:
    return Offer(
        code=reader.text("code"),
        name=reader.text("name"),
        market=reader.text("market"),
        vertical=reader.text("vertical"),
        active=reader.flag("active"),
    )


def _source(reader: _EntryReader) -> Source:
    return Source(
        code=reader.text("code"),
        name=reader.text("name"),
        offer=reader.text("offer"),
        source_key=_source_key(reader),
        active=reader.flag("active"),
        require_key=reader.flag("require_key", default=False),
        allowed_networks=_allowed_networks(reader),
        field_aliases=_field_aliases(reader),
        key_reuse=_key_reuse(reader),
        reply_format=_reply_format(reader),
    )


def _key_reuse(reader: _EntryReader) -> KeyReuse:
    value = reader.text("key_reuse", default="replay")
    for policy in KEY_REUSE_POLICIES:
        if value == policy:
            return policy
    raise reader.error("key_reuse", f"must be one of {', '.join(KEY_REUSE_POLICIES)}")


def _reply_format(reader: _EntryReader) -> ReplyFormat:
    value = reader.text("reply_format", default=ReplyFormat.JSON.value)
    if value in REPLY_FORMATS:
        return ReplyFormat(value)
    raise reader.error("reply_format", f"must be one of {', '.join(REPLY_FORMATS)}")


def _mapping(reader: _EntryReader) -> HttpMapping:
    return HttpMapping(
        source=reader.text("source"),
        hostname=_hostname(reader),
        path_prefix=_path_prefix(reader),
        active=reader.flag("active"),
    )


_MARKET_FIELDS = _Fields(required=("code", "name"), kept=("phone_region",))
_VERTICAL_FIELDS = _Fields(required=("code", "name"))
_OFFER_FIELDS = _Fields(required=("code", "name", "market", "vertical"), kept=("active",))
_SOURCE_FIELDS = _Fields(
    required=("code", "name", "offer"),
    kept=(
        *("source_key", "active", "require_key", "allowed_networks", "field_aliases"),
        *("key_reuse", "reply_format"),
    ),
)
_MAPPING_FIELDS = _Fields(
    required=("source", "hostname"), kept=("active",), defaulted=("path_prefix",)
)


def _section(document: Mapping[object, object], name: str) -> Sequence[object]:
    raw = document.get(name)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CatalogError("catalog", name, "must be a list of entries")
    return raw


def _entries(
    document: Mapping[object, object],
    section: str,
    fields: _Fields,
    build: Callable[[_EntryReader], Record],
) -> tuple[Entry[Record], ...]:
    entries: list[Entry[Record]] = []
    for number, raw in enumerate(_section(document, section), start=1):
        reader = _EntryReader(section, number, raw, fields)
        entries.append(Entry(reader.label, build(reader), reader.omitted))
    return tuple(entries)


def _reject_duplicates(
    entries: Sequence[Entry[Record]],
    identity: Callable[[Record], object],
    field: str,
    what: str,
) -> None:
    seen: dict[object, str] = {}
    for entry in entries:
        key = identity(entry.record)
        if key is None:
            continue
        if key in seen:
            raise CatalogError(entry.label, field, f"{what} as {seen[key]}")
        seen[key] = entry.label


def parse_catalog(document: object) -> CatalogDocument:
    """The typed entries of a catalog document; raises `CatalogError` on the first bad one."""
    if not isinstance(document, Mapping):
        raise CatalogError(
            "catalog", None, f"must be a mapping with the sections {', '.join(SECTIONS)}"
        )
    for name in document:
        if name not in SECTIONS:
            raise CatalogError(
                "catalog", str(name), f"unknown section (expected: {', '.join(SECTIONS)})"
            )
    parsed = CatalogDocument(
        markets=_entries(document, "markets", _MARKET_FIELDS, _market),
        verticals=_entries(document, "verticals", _VERTICAL_FIELDS, _vertical),
        offers=_entries(document, "offers", _OFFER_FIELDS, _offer),
        sources=_entries(document, "sources", _SOURCE_FIELDS, _source),
        mappings=_entries(document, "mappings", _MAPPING_FIELDS, _mapping),
    )
    _reject_duplicates(parsed.markets, lambda m: m.code, "code", "same code")
    _reject_duplicates(parsed.verticals, lambda v: v.code, "code", "same code")
    _reject_duplicates(parsed.offers, lambda o: o.code, "code", "same code")
    _reject_duplicates(parsed.sources, lambda s: s.code, "code", "same code")
    _reject_duplicates(parsed.sources, lambda s: s.source_key, "source_key", "same key")
    _reject_duplicates(
        parsed.mappings,
        lambda m: m.identity,
        "hostname",
        "same source, canonical hostname and path_prefix",
    )
    return parsed


# --- the stored catalog as a document ----------------------------------------------------


def _rows(records: Iterable[Record]) -> list[dict[str, object]]:
    return [dataclasses.asdict(record) for record in records]


def _source_row(source: Source) -> dict[str, object]:
    """A source as a document entry; the intake fields only when the source uses them."""
    row: dict[str, object] = {
        "code": source.code,
        "name": source.name,
        "offer": source.offer,
        "source_key": source.source_key,
        "active": source.active,
    }
    if source.require_key:
        row["require_key"] = True
    if source.allowed_networks:
        row["allowed_networks"] = list(source.allowed_networks)
    if source.field_aliases:
        row["field_aliases"] = dict(source.field_aliases)
    if source.key_reuse != "replay":
        row["key_reuse"] = source.key_reuse
    if source.reply_format is not ReplyFormat.JSON:
        row["reply_format"] = source.reply_format.value
    return row


def catalog_document(snapshot: CatalogSnapshot) -> dict[str, list[dict[str, object]]]:
    """The stored catalog in the document format, ordered for diffs.

    Every field is explicit except the intake fields of a source that does not use them
    (`require_key`, `allowed_networks`, `field_aliases`, `key_reuse`, `reply_format`), so a catalog
    that never used
    them exports as it always did.
    """
    return {
        "markets": _rows(sorted(snapshot.markets, key=lambda m: m.code)),
        "verticals": _rows(sorted(snapshot.verticals, key=lambda v: v.code)),
        "offers": _rows(sorted(snapshot.offers, key=lambda o: o.code)),
        "sources": [_source_row(s) for s in sorted(snapshot.sources, key=lambda s: s.code)],
        "mappings": _rows(sorted(snapshot.mappings, key=lambda m: m.identity)),
    }


# --- one source, for its posting instructions ----------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """One source with its offer, market and vertical and its active HTTP mappings."""

    source_id: int
    source: Source
    offer: Offer
    market: Market
    vertical: Vertical
    mappings: tuple[HttpMapping, ...]

    @property
    def accepts_leads(self) -> bool:
        return self.source.active and self.offer.active


def posting_path(path_prefix: str) -> str:
    """The path a lead for this prefix is posted to: the prefix itself, or `/api/leads`."""
    return LEADS_PATH if prefix_matches(path_prefix, LEADS_PATH) else path_prefix


def is_postable_prefix(path_prefix: str) -> bool:
    """Whether a request to the ingestion endpoint can ever match this prefix."""
    return prefix_matches(path_prefix, LEADS_PATH) or path_prefix.startswith(LEADS_PATH + "/")


def describe_source(snapshot: CatalogSnapshot, code: str) -> SourceDescription:
    source = next((s for s in snapshot.sources if s.code == code), None)
    if source is None:
        raise CatalogEntryNotFound(f'source "{code}"', None, "no source has this code")
    offer = next(o for o in snapshot.offers if o.code == source.offer)
    return SourceDescription(
        source_id=snapshot.source_ids[code],
        source=source,
        offer=offer,
        market=next(m for m in snapshot.markets if m.code == offer.market),
        vertical=next(v for v in snapshot.verticals if v.code == offer.vertical),
        mappings=tuple(
            sorted(
                (m for m in snapshot.mappings if m.source == code and m.active),
                key=lambda m: m.identity,
            )
        ),
    )
