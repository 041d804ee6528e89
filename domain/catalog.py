"""The classification catalog as operators declare it: typed records, parsing and validation.

Source keys, hostnames and path prefixes are canonicalized with the functions classification
uses (SPEC §5), so what the catalog stores is exactly what requests compare with. No I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

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
        super().__init__(f"{entry}: {problem}" if field is None else f"{entry}: {field}: {problem}")


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

    @property
    def place(self) -> tuple[str, str]:
        """Its hostname and path prefix made canonical: rows written with plain SQL may not be."""
        return (
            canonical_hostname(self.hostname) or self.hostname,
            canonical_path_prefix(self.path_prefix),
        )


Record = TypeVar("Record", Market, Vertical, Offer, Source, HttpMapping)
Identity = str | tuple[str, ...]


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

_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _type_hint(value: object) -> str:
    # YAML reads `no`, `on`, `1e3`, `0123` as booleans and numbers: say so, or the message
    # about a market coded `no` (Norway) is baffling.
    if isinstance(value, bool | int | float):
        return f" (got the {type(value).__name__} {value!r}: in YAML, quote the value)"
    return ""


class _EntryReader:
    """Reads the fields of one raw entry, raising `CatalogError` that names entry and field."""

    def __init__(self, section: str, number: int, raw: object, allowed: Sequence[str]) -> None:
        self.label = f"{section} #{number}"
        if not isinstance(raw, Mapping):
            raise CatalogError(self.label, None, "must be a mapping of field names to values")
        self.raw: Mapping[object, object] = raw
        identifier = raw.get(allowed[0])  # a mapping is named by its source, the rest by code
        if isinstance(identifier, str) and identifier.strip():
            self.label += f' "{identifier.strip()}"'
        for name in raw:
            if name not in allowed:
                raise CatalogError(
                    self.label, str(name), f"unknown field (expected: {', '.join(allowed)})"
                )

    def error(self, name: str, problem: str) -> CatalogError:
        return CatalogError(self.label, name, problem)

    def text(self, name: str, default: str = "") -> str:
        value = self.raw.get(name)
        if value is None and default:
            return default
        if not isinstance(value, str):
            raise self.error(name, "must be a string" + _type_hint(value))
        text = value.strip()
        if not text:
            raise self.error(name, "must not be empty")
        if _CONTROL_CHARACTERS.search(text):
            raise self.error(name, "must not contain control characters or lone surrogates")
        return text

    def optional_text(self, name: str, canonical: Callable[[str], str], problem: str) -> str | None:
        """A nullable string, canonicalized; `problem` when `canonical` refuses it."""
        if self.raw.get(name) is None:
            return None
        text = self.text(name)
        try:
            return canonical(text)
        except (ValueError, LeadError):
            raise self.error(name, problem) from None  # never echo the value: it may be a key

    def choice(self, name: str, options: Sequence[str]) -> str:
        """One of `options`, the first when null."""
        value = self.text(name, default=options[0])
        if value not in options:
            raise self.error(name, f"must be one of {', '.join(options)}")
        return value

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if not isinstance(value, bool):
            raise self.error(name, "must be true or false")
        return value


def canonical_phone_region(region: str) -> str:
    """An ISO 3166-1 alpha-2 code in upper case that `phonenumbers` can parse numbers for."""
    canonical = region.strip().upper()
    if canonical not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(region)
    return canonical


def _allowed_networks(reader: _EntryReader, name: str) -> tuple[str, ...]:
    value = reader.raw.get(name)
    if value is None:
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


def _field_aliases(reader: _EntryReader, name: str) -> tuple[tuple[str, str], ...]:
    value = reader.raw.get(name)
    if value is None:
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
        if _CONTROL_CHARACTERS.search(alias):
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


def _hostname(reader: _EntryReader, name: str) -> str:
    hostname = canonical_hostname(reader.text(name))
    if hostname is None or ("." not in hostname.strip("[]") and ":" not in hostname):
        raise reader.error(
            name, "must be a host name such as leads.example.com (no scheme, no path)"
        )
    return hostname


def _path_prefix(reader: _EntryReader, name: str) -> str:
    prefix = reader.text(name, default="/")
    if "?" in prefix or "#" in prefix:
        raise reader.error(name, "must be a path, without a query or fragment")
    return canonical_path_prefix(prefix)


# How each field that is not plain required text is read, when the entry gives it (one it
# leaves out gets its record's default); the rest are `_EntryReader.text`.
_FIELD_READERS: dict[str, Callable[[_EntryReader, str], object]] = {
    "phone_region": lambda reader, name: reader.optional_text(
        name,
        canonical_phone_region,
        "must be a two-letter region code that phonenumbers supports (e.g. US, GB, DE), or null",
    ),
    "source_key": lambda reader, name: reader.optional_text(
        name,
        canonical_source_key,
        f"must match {SOURCE_KEY_PATTERN} after NFKC normalization, trimming and lower-casing",
    ),
    "active": _EntryReader.flag,
    "require_key": _EntryReader.flag,
    "allowed_networks": _allowed_networks,
    "field_aliases": _field_aliases,
    "key_reuse": lambda reader, name: cast(KeyReuse, reader.choice(name, KEY_REUSE_POLICIES)),
    "reply_format": lambda reader, name: ReplyFormat(reader.choice(name, REPLY_FORMATS)),
    "hostname": _hostname,
    "path_prefix": _path_prefix,
}
# The fields of a record without a default are required. An optional field left out keeps its
# stored value, except one that is part of the entry's identity: leaving it out means its
# default.
_IDENTITY_DEFAULTS = ("path_prefix",)
_RECORDS: dict[str, type[Market | Vertical | Offer | Source | HttpMapping]] = {
    "markets": Market,
    "verticals": Vertical,
    "offers": Offer,
    "sources": Source,
    "mappings": HttpMapping,
}
SECTIONS: tuple[str, ...] = tuple(_RECORDS)
# (section, attribute, field named in the message, problem) that two entries may not share.
_UNIQUE = (
    *((section, "code", "code", "same code") for section in SECTIONS[:4]),
    ("sources", "source_key", "source_key", "same key"),
    ("mappings", "identity", "hostname", "same source, canonical hostname and path_prefix"),
)


def _entries(section: str, raw_entries: object) -> tuple[Entry[Any], ...]:
    if raw_entries is None:
        return ()
    if not isinstance(raw_entries, list):
        raise CatalogError("catalog", section, "must be a list of entries")
    record = _RECORDS[section]
    names = [f.name for f in dataclasses.fields(record)]
    required = [f.name for f in dataclasses.fields(record) if f.default is dataclasses.MISSING]
    kept = [name for name in names if name not in (*required, *_IDENTITY_DEFAULTS)]
    allowed = (*required, *kept, *(name for name in names if name in _IDENTITY_DEFAULTS))
    entries: list[Entry[Any]] = []
    for number, raw in enumerate(raw_entries, start=1):
        reader = _EntryReader(section, number, raw, allowed)
        for name in required:
            if reader.raw.get(name) is None:
                raise reader.error(name, "is required")
        values: dict[str, Any] = {
            name: _FIELD_READERS.get(name, _EntryReader.text)(reader, name)
            for name in names
            if name in reader.raw
        }
        omitted = frozenset(name for name in kept if name not in reader.raw)
        entries.append(Entry(reader.label, record(**values), omitted))
    return tuple(entries)


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
    parsed = CatalogDocument(**{name: _entries(name, document.get(name)) for name in SECTIONS})
    for section, attribute, field_name, problem in _UNIQUE:
        seen: dict[object, str] = {}
        for entry in getattr(parsed, section):
            key = getattr(entry.record, attribute)
            if key in seen:
                raise CatalogError(entry.label, field_name, f"{problem} as {seen[key]}")
            if key is not None:
                seen[key] = entry.label
    return parsed


# --- the stored catalog as a document ----------------------------------------------------


_INTAKE_FIELDS = ("require_key", "allowed_networks", "field_aliases", "key_reuse", "reply_format")
_DEFAULTS = Source("", "", "")  # every intake field as a source that uses none has it


def identity(record: Market | Vertical | Offer | Source | HttpMapping) -> Identity:
    """What names a record in its section: its code, or a mapping's source, hostname and prefix."""
    return record.identity if isinstance(record, HttpMapping) else record.code


def _row(record: Market | Vertical | Offer | Source | HttpMapping) -> dict[str, object]:
    row = dataclasses.asdict(record)
    if not isinstance(record, Source):
        return row
    row.update(
        allowed_networks=list(record.allowed_networks),
        field_aliases=dict(record.field_aliases),
        reply_format=record.reply_format.value,
    )
    # The intake fields only when the source uses them: a catalog that uses none of them
    # exports without them.
    return {
        name: value
        for name, value in row.items()
        if name not in _INTAKE_FIELDS or getattr(record, name) != getattr(_DEFAULTS, name)
    }


def catalog_document(snapshot: CatalogSnapshot) -> dict[str, list[dict[str, object]]]:
    """The stored catalog in the document format, ordered for diffs."""
    return {
        section: [_row(record) for record in sorted(getattr(snapshot, section), key=identity)]
        for section in SECTIONS
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
    mappings = (m for m in snapshot.mappings if m.source == code and m.active)
    return SourceDescription(
        source_id=snapshot.source_ids[code],
        source=source,
        offer=offer,
        market=next(m for m in snapshot.markets if m.code == offer.market),
        vertical=next(v for v in snapshot.verticals if v.code == offer.vertical),
        mappings=tuple(sorted(mappings, key=lambda m: m.identity)),
    )
