"""Checking a stored catalog for what will misroute or reject leads.

An ambiguity (one hostname and path prefix held by several live sources) makes every post
there fail with 409 `ambiguous_source_mapping`, so it is an error; the rest are warnings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from domain.aliases import is_usable_alias
from domain.catalog import (
    LEADS_PATH,
    MIN_REQUIRED_KEY_LENGTH,
    CatalogSnapshot,
    HttpMapping,
    Source,
    is_postable_prefix,
)
from domain.client_address import NetworkError, canonical_network
from domain.fields import ALIAS_TARGETS


@dataclass(frozen=True, slots=True)
class CatalogProblem:
    severity: Literal["error", "warning"]
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class CatalogReport:
    problems: tuple[CatalogProblem, ...]

    @property
    def errors(self) -> tuple[CatalogProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[CatalogProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def has_ambiguity(self) -> bool:
        return any(p.kind == "ambiguous_mapping" for p in self.problems)


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """A canonical hostname and path prefix that several live sources hold: posts there get 409."""

    hostname: str
    path_prefix: str
    sources: tuple[str, ...]  # their codes, sorted

    @property
    def place(self) -> tuple[str, str]:
        return (self.hostname, self.path_prefix)

    def __str__(self) -> str:
        return (
            f"ambiguous mapping {self.hostname}{self.path_prefix} held by {len(self.sources)} "
            f"active sources ({', '.join(self.sources)}): leads posted there get 409 "
            "ambiguous_source_mapping"
        )


def find_ambiguities(snapshot: CatalogSnapshot) -> tuple[Ambiguity, ...]:
    """Active mappings that share a place across sources that can take leads, by place."""
    offers = {o.code: o for o in snapshot.offers}
    live_sources = {s.code for s in snapshot.sources if s.active and offers[s.offer].active}
    holders: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for mapping in snapshot.mappings:
        if mapping.active and mapping.source in live_sources:
            holders[mapping.place].add(mapping.source)
    return tuple(
        Ambiguity(hostname, path_prefix, tuple(sorted(codes)))
        for (hostname, path_prefix), codes in sorted(holders.items())
        if len(codes) > 1
    )


def check_catalog(snapshot: CatalogSnapshot) -> CatalogReport:
    """Every problem of the stored catalog, errors first, each group in a stable order."""
    offers = {o.code: o for o in snapshot.offers}
    sources = {s.code: s for s in snapshot.sources}
    problems: list[CatalogProblem] = []

    def warn(kind: str, message: str) -> None:
        problems.append(CatalogProblem("warning", kind, message))

    for mapping in snapshot.mappings:
        if not mapping.active:
            continue
        source = sources[mapping.source]
        label, place = mapping.label, mapping.place
        if not source.active:
            warn(
                "mapping_of_inactive_source",
                f"active mapping {label} points to inactive source {source.code}",
            )
        elif not offers[source.offer].active:
            warn(
                "mapping_of_inactive_offer",
                f"active mapping {label} points to source {source.code} "
                f"of inactive offer {source.offer}",
            )
        if place != (mapping.hostname, mapping.path_prefix):
            warn(
                "non_canonical_mapping",
                f"mapping {label} is not stored in canonical form "
                f"({place[0]}{place[1]}), so requests may not match it: re-apply the catalog",
            )
        if not is_postable_prefix(place[1]):
            warn(
                "unreachable_mapping",
                f"mapping {label}: path_prefix is outside {LEADS_PATH}, "
                f"so no lead posted to {LEADS_PATH}/… can match it",
            )
    for ambiguity in find_ambiguities(snapshot):
        codes = ambiguity.sources
        held_by = ", ".join(f"{c} (source_id {snapshot.source_ids[c]})" for c in codes)
        problems.append(
            CatalogProblem(
                "error",
                "ambiguous_mapping",
                f"ambiguous mapping {ambiguity.hostname}{ambiguity.path_prefix} is held by "
                f"{len(codes)} active sources: {held_by}; leads posted there get 409 "
                "ambiguous_source_mapping",
            )
        )
    for source in snapshot.sources:
        if not source.active:
            continue
        if not offers[source.offer].active:
            warn(
                "source_of_inactive_offer",
                f"active source {source.code} belongs to inactive offer {source.offer}, "
                "so it takes no leads",
            )
        _intake_problems(source, snapshot.mappings, warn)
    order = {"error": 0, "warning": 1}
    return CatalogReport(tuple(sorted(problems, key=lambda p: (order[p.severity], p.message))))


def _intake_problems(
    source: Source, mappings: tuple[HttpMapping, ...], warn: Callable[[str, str], None]
) -> None:
    """What keeps an active source's key, network or alias settings from working as meant."""
    code = source.code
    if source.require_key:
        if source.source_key is None:
            warn(
                "required_key_missing",
                f"source {code} requires its key but has none, so every lead for it "
                "is refused: give it a source_key",
            )
        elif len(source.source_key) < MIN_REQUIRED_KEY_LENGTH:
            warn(
                "required_key_short",
                f"source {code} requires its key but the key is shorter than "
                f"{MIN_REQUIRED_KEY_LENGTH} characters, easy to guess: give it a longer one",
            )
        places = ", ".join(
            f"{m.hostname}{m.path_prefix}"
            for m in sorted(mappings, key=lambda m: m.identity)
            if m.source == code and m.active
        )
        if places:
            warn(
                "required_key_on_mapping",
                f"source {code} requires its key and is mapped to {places}: posts there "
                "are refused unless they also send source_key in the body or query string",
            )
    for network in source.allowed_networks:
        try:
            canonical_network(network)
        except NetworkError as error:
            warn(
                "unusable_network", f"source {code}: allowed network {error}; it matches no client"
            )
    for alias, target in source.field_aliases:
        if not is_usable_alias(alias, target):
            warn(
                "unusable_field_alias",
                f"source {code}: field alias {alias} → {target} is not a folded, unknown field "
                f"name mapped to one of {', '.join(ALIAS_TARGETS)}, so it is ignored",
            )
