"""Planning a catalog apply: what each entry of a document creates, updates or leaves alone.

References resolve against the document and the stored catalog together, and source keys must
stay unique across both, so a plan that passes here writes without a constraint violation.
Entries the document does not mention are not part of the plan: applying is an upsert, never a
delete. A plan that would make a hostname and path prefix ambiguous (SPEC §5.3: posts there get
409) is refused unless the ambiguity is explicitly allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal

from domain.catalog import (
    MIN_REQUIRED_KEY_LENGTH,
    SECTIONS,
    CatalogDocument,
    CatalogError,
    CatalogSnapshot,
    Entry,
    HttpMapping,
    Identity,
    Market,
    Offer,
    Record,
    Source,
    Vertical,
    identity,
)
from domain.catalog_check import Ambiguity, find_ambiguities

Action = Literal["create", "update", "unchanged"]
ACTIONS: tuple[Action, ...] = ("create", "update", "unchanged")
# The codes each section's entries name, checked in this order.
_REFERENCES = {"offers": ("market", "vertical"), "sources": ("offer",), "mappings": ("source",)}


class AmbiguousMapping(CatalogError):
    """The apply would give a hostname and path prefix to more than one live source."""

    def __init__(self, entry: str, ambiguities: Sequence[Ambiguity]) -> None:
        self.ambiguities = tuple(ambiguities)
        more = len(self.ambiguities) - 1
        problem = str(self.ambiguities[0]) + (f" (and {more} more)" if more else "")
        super().__init__(entry, None, problem)


@dataclass(frozen=True, slots=True)
class PlannedChange(Generic[Record]):
    """One entry of the document: the state it asks for, and the state stored before."""

    kind: str
    subject: str
    action: Action
    record: Record
    stored: Record | None
    changed_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogPlan:
    """The changes, and the ambiguous mappings the catalog holds once they are written."""

    markets: tuple[PlannedChange[Market], ...] = ()
    verticals: tuple[PlannedChange[Vertical], ...] = ()
    offers: tuple[PlannedChange[Offer], ...] = ()
    sources: tuple[PlannedChange[Source], ...] = ()
    mappings: tuple[PlannedChange[HttpMapping], ...] = ()
    ambiguities: tuple[Ambiguity, ...] = ()

    @property
    def changes(self) -> tuple[PlannedChange[Any], ...]:
        return (*self.markets, *self.verticals, *self.offers, *self.sources, *self.mappings)

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def has_changes(self) -> bool:
        return any(change.action != "unchanged" for change in self.changes)

    @property
    def sources_changing_key(self) -> tuple[str, ...]:
        """Stored sources whose key changes: released first, so keys can swap in one apply."""
        return tuple(
            change.record.code
            for change in self.sources
            if change.action == "update" and "source_key" in change.changed_fields
        )


def _plan(
    section: str, entries: Sequence[Entry[Record]], stored: Mapping[Identity, Record]
) -> tuple[PlannedChange[Record], ...]:
    kind = section.removesuffix("s")
    changes: list[PlannedChange[Record]] = []
    for entry in entries:
        record = entry.record
        subject = record.label if isinstance(record, HttpMapping) else record.code
        current = stored.get(identity(record))
        if current is None:
            changes.append(PlannedChange(kind, subject, "create", record, None))
            continue
        record = dataclasses.replace(record, **{n: getattr(current, n) for n in entry.omitted})
        changed = tuple(
            f.name
            for f in dataclasses.fields(record)
            if getattr(record, f.name) != getattr(current, f.name)
        )
        action: Action = "update" if changed else "unchanged"
        changes.append(PlannedChange(kind, subject, action, record, current, changed))
    return tuple(changes)


def _stored_mappings(mappings: Iterable[HttpMapping]) -> dict[Identity, HttpMapping]:
    """Stored mappings by canonical identity; a row already in canonical form wins a tie.

    Rows written with plain SQL may hold a hostname or prefix that is not canonical; the
    document's entry then matches it and rewrites it canonical.
    """
    by_identity: dict[Identity, HttpMapping] = {}
    for mapping in mappings:
        identity = (mapping.source, *mapping.place)
        if identity not in by_identity or mapping.identity == identity:
            by_identity[identity] = mapping
    return by_identity


def plan_catalog(
    document: CatalogDocument, snapshot: CatalogSnapshot, allow_ambiguous: bool = False
) -> CatalogPlan:
    """What applying `document` to `snapshot` does; raises `CatalogError` naming a bad entry.

    An ambiguity the apply makes (a place, or a source holding it, that the stored catalog
    does not already have) raises `AmbiguousMapping` unless `allow_ambiguous`; ambiguities
    the catalog already had are left to `check` and listed in the plan like allowed ones.
    """
    codes = {
        field: {r.code for r in getattr(snapshot, f"{field}s")}
        | {e.record.code for e in getattr(document, f"{field}s")}
        for field in ("market", "vertical", "offer", "source")
    }
    for section, fields in _REFERENCES.items():
        for entry in getattr(document, section):
            for field in fields:
                if (code := getattr(entry.record, field)) not in codes[field]:
                    problem = f'"{code}" names no {field} in this file or in the catalog'
                    raise CatalogError(entry.label, field, problem)
    stored = {s: {identity(r): r for r in getattr(snapshot, s)} for s in SECTIONS[:4]}
    stored["mappings"] = _stored_mappings(snapshot.mappings)
    changes: dict[str, Any] = {s: _plan(s, getattr(document, s), stored[s]) for s in SECTIONS}
    plan = CatalogPlan(**changes)
    _check_keys(document, plan, snapshot)
    ambiguities = find_ambiguities(applied(plan, snapshot))
    if ambiguities and not allow_ambiguous:
        had = {a.place: set(a.sources) for a in find_ambiguities(snapshot)}
        made = [a for a in ambiguities if not set(a.sources) <= had.get(a.place, set())]
        if made:
            raise AmbiguousMapping(_entry_making(document, made[0]), made)
    return dataclasses.replace(plan, ambiguities=ambiguities)


def applied(plan: CatalogPlan, snapshot: CatalogSnapshot) -> CatalogSnapshot:
    """The stored catalog as it is once `plan` is written."""
    merged: dict[str, Any] = {}
    for section in SECTIONS[:4]:
        by_code = {record.code: record for record in getattr(snapshot, section)}
        by_code.update((change.record.code, change.record) for change in getattr(plan, section))
        merged[section] = tuple(by_code.values())
    replaced = {change.stored for change in plan.mappings if change.stored is not None}
    return CatalogSnapshot(
        **merged,
        mappings=(
            *(m for m in snapshot.mappings if m not in replaced),
            *(change.record for change in plan.mappings),
        ),
        source_ids=snapshot.source_ids,
    )


def _entry_making(document: CatalogDocument, ambiguity: Ambiguity) -> str:
    """The label of the file's entry that gives a source the place, else of one of them."""
    for mapping in document.mappings:
        record = mapping.record
        if record.source in ambiguity.sources and record.identity[1:] == ambiguity.place:
            return mapping.label
    for source in document.sources:
        if source.record.code in ambiguity.sources:
            return source.label
    return "catalog"


def _check_keys(document: CatalogDocument, plan: CatalogPlan, snapshot: CatalogSnapshot) -> None:
    """Source keys once the plan is written: no two sources share one, counting sources the
    file leaves out, and one that is required cannot be guessed (`require_key` and `source_key`
    may each come from the file or from what is stored)."""
    in_document = {change.record.code for change in plan.sources}
    owners = {
        s.source_key: s.code
        for s in snapshot.sources
        if s.source_key is not None and s.code not in in_document
    }
    for entry, change in zip(document.sources, plan.sources, strict=True):
        code, key = change.record.code, change.record.source_key
        if key is not None and (owner := owners.setdefault(key, code)) != code:
            # The key itself is a secret: name its holder, never the key.
            raise CatalogError(entry.label, "source_key", f'is already the key of source "{owner}"')
    for entry, change in zip(document.sources, plan.sources, strict=True):
        key = change.record.source_key
        if change.record.require_key and (key is None or len(key) < MIN_REQUIRED_KEY_LENGTH):
            # Never echo the key, nor its length.
            problem = (
                "this source has no source_key" if key is None else "its source_key is shorter"
            )
            raise CatalogError(
                entry.label,
                "require_key",
                f"needs a source_key of at least {MIN_REQUIRED_KEY_LENGTH} characters: {problem}",
            )
