"""Catalog documents without a database: parsing, validation, planning, checking, export."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.catalog import (
    CatalogDocument,
    CatalogEntryNotFound,
    CatalogError,
    CatalogSnapshot,
    HttpMapping,
    Market,
    Offer,
    Source,
    Vertical,
    catalog_document,
    describe_source,
    is_postable_prefix,
    parse_catalog,
    posting_path,
)
from domain.catalog_check import Ambiguity, check_catalog
from domain.catalog_plan import AmbiguousMapping, plan_catalog


def document(**sections: Any) -> dict[str, Any]:
    """A valid one-of-each document; keyword sections replace the defaults."""
    base: dict[str, Any] = {
        "markets": [{"code": "us", "name": "United States", "phone_region": "us"}],
        "verticals": [{"code": "solar", "name": "Solar"}],
        "offers": [{"code": "us-solar", "name": "US solar", "market": "us", "vertical": "solar"}],
        "sources": [
            {"code": "acme", "name": "Acme", "offer": "us-solar", "source_key": " Acme-Key "}
        ],
        "mappings": [
            {"source": "acme", "hostname": "Leads.Example.COM.", "path_prefix": "/api//leads/acme/"}
        ],
    }
    base.update(sections)
    return base


STORED = CatalogSnapshot(
    markets=(Market("us", "United States", "US"),),
    verticals=(Vertical("solar", "Solar"),),
    offers=(Offer("us-solar", "US solar", "us", "solar"),),
    sources=(Source("acme", "Acme", "us-solar", "acme-key"),),
    mappings=(HttpMapping("acme", "leads.example.com", "/api/leads/acme"),),
    source_ids={"acme": 7},
)


def error_of(raw: object) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(raw)
    return caught.value


# --- parsing ------------------------------------------------------------------------------


def test_parse_canonicalizes_keys_hostnames_prefixes_and_regions() -> None:
    parsed = parse_catalog(document())
    assert parsed.markets[0].record == Market("us", "United States", "US")
    assert parsed.sources[0].record == Source("acme", "Acme", "us-solar", "acme-key", True)
    assert parsed.mappings[0].record == HttpMapping(
        "acme", "leads.example.com", "/api/leads/acme", True
    )
    assert parsed.sources[0].label == 'sources #1 "acme"'
    assert parsed.mappings[0].label == 'mappings #1 "acme"'


def test_idn_hostname_becomes_its_a_label() -> None:
    raw = document(mappings=[{"source": "acme", "hostname": "bücher.example"}])
    mapping = parse_catalog(raw).mappings[0].record
    assert mapping.hostname == "xn--bcher-kva.example"
    assert mapping.path_prefix == "/"


def test_omitted_optional_fields_are_recorded_and_defaulted() -> None:
    raw = document(
        markets=[{"code": "us", "name": "US"}],
        sources=[{"code": "acme", "name": "Acme", "offer": "us-solar"}],
        mappings=[{"source": "acme", "hostname": "h.example", "path_prefix": None}],
    )
    parsed = parse_catalog(raw)
    assert parsed.markets[0].omitted == {"phone_region"}
    assert parsed.markets[0].record.phone_region is None
    assert parsed.sources[0].omitted == {
        "source_key",
        "active",
        "require_key",
        "allowed_networks",
        "field_aliases",
        "key_reuse",
        "reply_format",
    }
    assert parsed.sources[0].record == Source("acme", "Acme", "us-solar", None, True)
    # path_prefix is part of a mapping's identity: left out (or null), it is "/".
    assert parsed.mappings[0].omitted == {"active"}
    assert parsed.mappings[0].record.path_prefix == "/"


def test_a_sources_choices_are_read_and_anything_else_is_refused() -> None:
    given = {"code": "a", "name": "A", "offer": "o", "key_reuse": "reject", "reply_format": "xml"}
    source = parse_catalog(document(sources=[given])).sources[0].record
    assert (source.key_reuse, source.reply_format) == ("reject", "xml")
    error = error_of(document(sources=[{**given, "reply_format": "yaml"}]))
    assert (error.entry, error.field) == ('sources #1 "a"', "reply_format")
    assert "must be one of json, xml, text" in str(error)


def test_explicit_null_is_not_omitted() -> None:
    raw = document(sources=[{"code": "a", "name": "A", "offer": "o", "source_key": None}])
    entry = parse_catalog(raw).sources[0]
    assert entry.record.source_key is None
    assert "source_key" not in entry.omitted


def test_empty_and_null_sections_are_empty() -> None:
    assert parse_catalog({}) == CatalogDocument()
    assert parse_catalog({"markets": None, "mappings": []}) == CatalogDocument()


@pytest.mark.parametrize(
    ("raw", "entry", "field", "words"),
    [
        ([], "catalog", None, "must be a mapping"),
        ({"sorces": []}, "catalog", "sorces", "unknown section"),
        ({"markets": {"code": "us"}}, "catalog", "markets", "must be a list"),
        ({"markets": ["us"]}, "markets #1", None, "must be a mapping"),
        ({"markets": [{"code": "us"}]}, 'markets #1 "us"', "name", "is required"),
        ({"markets": [{"code": "us", "name": None}]}, 'markets #1 "us"', "name", "is required"),
        ({"markets": [{"name": "US"}]}, "markets #1", "code", "is required"),
        (
            {"markets": [{"code": "us", "name": "US", "region": "US"}]},
            'markets #1 "us"',
            "region",
            "unknown field",
        ),
        ({"markets": [{"code": "  ", "name": "US"}]}, "markets #1", "code", "must not be empty"),
        (
            {"markets": [{"code": "us", "name": "a\x00b"}]},
            'markets #1 "us"',
            "name",
            "control characters",
        ),
        (
            {"markets": [{"code": "us", "name": "a\ud800"}]},
            'markets #1 "us"',
            "name",
            "lone surrogates",
        ),
        ({"markets": [{"code": False, "name": "Norway"}]}, "markets #1", "code", "quote the value"),
        ({"verticals": [{"code": 12, "name": "x"}]}, "verticals #1", "code", "got the int 12"),
        ({"verticals": [{"code": ["v"], "name": "x"}]}, "verticals #1", "code", "a string"),
        (
            {"markets": [{"code": "us", "name": "US", "phone_region": "XX"}]},
            'markets #1 "us"',
            "phone_region",
            "two-letter region",
        ),
        (
            {"markets": [{"code": "us", "name": "US", "phone_region": "001"}]},
            'markets #1 "us"',
            "phone_region",
            "two-letter region",
        ),
        (
            {"markets": [{"code": "no", "name": "Norway", "phone_region": False}]},
            'markets #1 "no"',
            "phone_region",
            "quote the value",
        ),
        (
            {"offers": [{"code": "o", "name": "O", "market": "us", "vertical": "v", "active": 1}]},
            'offers #1 "o"',
            "active",
            "true or false",
        ),
        (
            {"sources": [{"code": "s", "name": "S", "offer": "o", "source_key": "bad key!"}]},
            'sources #1 "s"',
            "source_key",
            "must match",
        ),
        (
            {"mappings": [{"source": "s", "hostname": "https://leads.example.com"}]},
            'mappings #1 "s"',
            "hostname",
            "no scheme",
        ),
        (
            {"mappings": [{"source": "s", "hostname": "leads.example.com/api"}]},
            'mappings #1 "s"',
            "hostname",
            "host name",
        ),
        (
            {"mappings": [{"source": "s", "hostname": "h.example", "path_prefix": "/a?b=1"}]},
            'mappings #1 "s"',
            "path_prefix",
            "without a query",
        ),
        (
            {"markets": [{"code": "us", "name": "A"}, {"code": " us ", "name": "B"}]},
            'markets #2 "us"',
            "code",
            "same code as markets #1",
        ),
        (
            {"verticals": [{"code": "v", "name": "A"}, {"code": "v", "name": "B"}]},
            'verticals #2 "v"',
            "code",
            "same code",
        ),
        (
            {
                "offers": [
                    {"code": "o", "name": "A", "market": "m", "vertical": "v"},
                    {"code": "o", "name": "B", "market": "m", "vertical": "v"},
                ]
            },
            'offers #2 "o"',
            "code",
            "same code",
        ),
        (
            {
                "sources": [
                    {"code": "a", "name": "A", "offer": "o", "source_key": "k1"},
                    {"code": "a", "name": "B", "offer": "o"},
                ]
            },
            'sources #2 "a"',
            "code",
            "same code",
        ),
        (
            {
                "sources": [
                    {"code": "a", "name": "A", "offer": "o", "source_key": "K1"},
                    {"code": "b", "name": "B", "offer": "o", "source_key": "k1"},
                ]
            },
            'sources #2 "b"',
            "source_key",
            'same key as sources #1 "a"',
        ),
        (
            {
                "mappings": [
                    {"source": "a", "hostname": "H.example", "path_prefix": "/x/"},
                    {"source": "a", "hostname": "h.example.", "path_prefix": "/x"},
                ]
            },
            'mappings #2 "a"',
            "hostname",
            "same source, canonical hostname and path_prefix",
        ),
    ],
)
def test_invalid_documents_name_the_entry_and_field(
    raw: object, entry: str, field: str | None, words: str
) -> None:
    error = error_of(raw)
    assert error.entry == entry
    assert error.field == field
    assert words in error.problem
    assert str(error).startswith(entry)


def test_errors_never_echo_a_source_key() -> None:
    secret = "Sécret key!!"
    error = error_of({"sources": [{"code": "s", "name": "S", "offer": "o", "source_key": secret}]})
    assert secret not in str(error)
    assert secret.lower() not in str(error)


# --- planning -----------------------------------------------------------------------------


def test_plan_on_an_empty_catalog_creates_everything() -> None:
    plan = plan_catalog(parse_catalog(document()), CatalogSnapshot())
    assert [(c.kind, c.action) for c in plan.changes] == [
        ("market", "create"),
        ("vertical", "create"),
        ("offer", "create"),
        ("source", "create"),
        ("mapping", "create"),
    ]
    assert plan.count("create") == 5
    assert plan.has_changes
    assert plan.mappings[0].subject == "acme leads.example.com/api/leads/acme"


def test_plan_of_the_stored_state_changes_nothing() -> None:
    plan = plan_catalog(parse_catalog(document()), STORED)
    assert plan.count("unchanged") == 5
    assert not plan.has_changes
    assert plan.sources_changing_key == ()


def test_plan_lists_the_changed_fields_of_an_update() -> None:
    raw = document(
        offers=[
            {"code": "us-solar", "name": "US solar", "market": "us", "vertical": "solar"},
            {"code": "us-solar-2", "name": "US solar 2", "market": "us", "vertical": "solar"},
        ],
        sources=[
            {
                "code": "acme",
                "name": "Acme Media",
                "offer": "us-solar-2",
                "source_key": "new-key",
                "active": False,
            }
        ],
    )
    plan = plan_catalog(parse_catalog(raw), STORED)
    source = plan.sources[0]
    assert source.action == "update"
    assert source.changed_fields == ("name", "offer", "source_key", "active")
    assert source.stored == STORED.sources[0]
    assert plan.sources_changing_key == ("acme",)
    assert [c.action for c in plan.offers] == ["unchanged", "create"]


def test_omitted_fields_keep_their_stored_values() -> None:
    raw = document(
        markets=[{"code": "us", "name": "United States"}],
        sources=[{"code": "acme", "name": "Acme", "offer": "us-solar"}],
        mappings=[
            {"source": "acme", "hostname": "leads.example.com", "path_prefix": "/api/leads/acme"}
        ],
    )
    plan = plan_catalog(parse_catalog(raw), STORED)
    assert not plan.has_changes
    assert plan.markets[0].record.phone_region == "US"
    assert plan.sources[0].record.source_key == "acme-key"


def test_explicit_null_clears_a_stored_key() -> None:
    raw = document(
        sources=[{"code": "acme", "name": "Acme", "offer": "us-solar", "source_key": None}]
    )
    change = plan_catalog(parse_catalog(raw), STORED).sources[0]
    assert change.changed_fields == ("source_key",)
    assert change.record.source_key is None


def test_keys_may_swap_between_sources_in_one_apply() -> None:
    stored = CatalogSnapshot(
        offers=(Offer("o", "O", "m", "v"),),
        markets=(Market("m", "M"),),
        verticals=(Vertical("v", "V"),),
        sources=(Source("a", "A", "o", "k1"), Source("b", "B", "o", "k2")),
    )
    raw = {
        "sources": [
            {"code": "a", "name": "A", "offer": "o", "source_key": "k2"},
            {"code": "b", "name": "B", "offer": "o", "source_key": "k1"},
        ]
    }
    plan = plan_catalog(parse_catalog(raw), stored)
    assert plan.sources_changing_key == ("a", "b")


def test_a_key_held_by_a_source_outside_the_document_is_rejected() -> None:
    stored = STORED
    raw = {
        "sources": [{"code": "other", "name": "O", "offer": "us-solar", "source_key": "ACME-KEY"}]
    }
    with pytest.raises(CatalogError) as caught:
        plan_catalog(parse_catalog(raw), stored)
    assert caught.value.entry == 'sources #1 "other"'
    assert caught.value.field == "source_key"
    assert 'source "acme"' in caught.value.problem
    assert "acme-key" not in str(caught.value)


def test_a_kept_key_counts_against_a_claim_in_the_same_document() -> None:
    raw = {
        "sources": [
            {"code": "acme", "name": "Acme", "offer": "us-solar"},
            {"code": "b", "name": "B", "offer": "us-solar", "source_key": "acme-key"},
        ]
    }
    with pytest.raises(CatalogError) as caught:
        plan_catalog(parse_catalog(raw), STORED)
    assert caught.value.entry == 'sources #2 "b"'


@pytest.mark.parametrize(
    ("raw", "entry", "field"),
    [
        (
            {"offers": [{"code": "o", "name": "O", "market": "xx", "vertical": "solar"}]},
            "offers #1",
            "market",
        ),
        (
            {"offers": [{"code": "o", "name": "O", "market": "us", "vertical": "xx"}]},
            "offers #1",
            "vertical",
        ),
        ({"sources": [{"code": "s", "name": "S", "offer": "xx"}]}, "sources #1", "offer"),
        ({"mappings": [{"source": "xx", "hostname": "h.example"}]}, "mappings #1", "source"),
    ],
)
def test_unknown_references_are_rejected(raw: dict[str, Any], entry: str, field: str) -> None:
    with pytest.raises(CatalogError) as caught:
        plan_catalog(parse_catalog(raw), STORED)
    assert caught.value.entry.startswith(entry)
    assert caught.value.field == field
    assert '"xx" names no' in caught.value.problem


def test_references_resolve_against_the_stored_catalog() -> None:
    raw = {"sources": [{"code": "s2", "name": "S2", "offer": "us-solar"}]}
    assert plan_catalog(parse_catalog(raw), STORED).sources[0].action == "create"


def test_a_mapping_matches_a_stored_row_in_non_canonical_form_and_rewrites_it() -> None:
    stored = dataclasses.replace(
        STORED, mappings=(HttpMapping("acme", "leads.example.com.", "/api/leads/acme/"),)
    )
    raw = {
        "mappings": [
            {"source": "acme", "hostname": "leads.example.com", "path_prefix": "/api/leads/acme"}
        ]
    }
    change = plan_catalog(parse_catalog(raw), stored).mappings[0]
    assert change.action == "update"
    assert change.changed_fields == ("hostname", "path_prefix")
    assert change.stored == stored.mappings[0]


def test_a_canonical_stored_mapping_wins_over_a_non_canonical_twin() -> None:
    canonical = HttpMapping("acme", "leads.example.com", "/x")
    for rows in (
        (HttpMapping("acme", "leads.example.com", "/x/"), canonical),
        (canonical, HttpMapping("acme", "leads.example.com", "/x/")),
    ):
        stored = dataclasses.replace(STORED, mappings=rows)
        raw = {
            "mappings": [{"source": "acme", "hostname": "leads.example.com", "path_prefix": "/x"}]
        }
        change = plan_catalog(parse_catalog(raw), stored).mappings[0]
        assert change.action == "unchanged"
        assert change.stored == canonical


# --- export -------------------------------------------------------------------------------


def test_export_is_sorted_explicit_and_applies_as_a_no_op() -> None:
    exported = catalog_document(STORED)
    assert exported["sources"] == [
        {
            "code": "acme",
            "name": "Acme",
            "offer": "us-solar",
            "source_key": "acme-key",
            "active": True,
        }
    ]
    assert list(exported) == ["markets", "verticals", "offers", "sources", "mappings"]
    assert not plan_catalog(parse_catalog(exported), STORED).has_changes


_codes = st.text(alphabet="abcdefgh-", min_size=1, max_size=6).filter(lambda c: c.strip("-"))


@given(
    markets=st.dictionaries(
        _codes, st.sampled_from([None, "US", "GB", "DE"]), min_size=1, max_size=3
    ),
    sources=st.dictionaries(_codes, st.booleans(), max_size=4),
    prefixes=st.lists(
        st.sampled_from(["/", "/api/leads", "/api/leads/a", "/b"]), max_size=3, unique=True
    ),
)
def test_export_round_trip_property(
    markets: dict[str, str | None], sources: dict[str, bool], prefixes: list[str]
) -> None:
    market_codes = sorted(markets)
    snapshot = CatalogSnapshot(
        markets=tuple(Market(c, f"Market {c}", r) for c, r in markets.items()),
        verticals=(Vertical("v", "V"),),
        offers=tuple(Offer(f"o-{c}", "O", c, "v", c != market_codes[0]) for c in market_codes),
        sources=tuple(
            Source(c, c.upper(), f"o-{market_codes[0]}", f"k{i}" if active else None, active)
            for i, (c, active) in enumerate(sources.items())
        ),
        mappings=tuple(HttpMapping(c, "h.example", p) for c in sources for p in prefixes),
    )
    exported = catalog_document(snapshot)
    again = copy.deepcopy(exported)
    assert not plan_catalog(parse_catalog(exported), snapshot).has_changes
    assert exported == again  # parsing never mutates the document


# --- ambiguity on apply ---------------------------------------------------------------------

COPYCAT = {"code": "copycat", "name": "Copycat", "offer": "us-solar"}
ACME_PLACE = {"hostname": "LEADS.example.com", "path_prefix": "/api/leads/acme/"}
ACME_AMBIGUITY = Ambiguity("leads.example.com", "/api/leads/acme", ("acme", "copycat"))


def ambiguity_of(raw: dict[str, Any], stored: CatalogSnapshot = STORED) -> AmbiguousMapping:
    with pytest.raises(AmbiguousMapping) as caught:
        plan_catalog(parse_catalog(raw), stored)
    return caught.value


def test_apply_refuses_a_mapping_that_shares_a_stored_place_and_names_both_sources() -> None:
    raw = {"sources": [COPYCAT], "mappings": [{"source": "copycat", **ACME_PLACE}]}
    error = ambiguity_of(raw)
    assert str(error) == (
        'mappings #1 "copycat": ambiguous mapping leads.example.com/api/leads/acme held by 2 '
        "active sources (acme, copycat): leads posted there get 409 ambiguous_source_mapping"
    )
    assert error.ambiguities == (ACME_AMBIGUITY,)

    allowed = plan_catalog(parse_catalog(raw), STORED, allow_ambiguous=True)
    assert allowed.ambiguities == (ACME_AMBIGUITY,)
    assert allowed.count("create") == 2


def test_apply_refuses_two_mappings_of_the_file_at_one_place() -> None:
    raw = {
        "sources": [COPYCAT, {**COPYCAT, "code": "twin"}],
        "mappings": [
            {"source": "twin", "hostname": "new.example", "path_prefix": "/api/leads"},
            {"source": "copycat", "hostname": "NEW.example.", "path_prefix": "/api//leads/"},
        ],
    }
    error = ambiguity_of(raw)
    assert str(error).startswith(
        'mappings #1 "twin": ambiguous mapping new.example/api/leads held by 2 active sources '
        "(copycat, twin)"
    )


def test_apply_refuses_reactivating_a_source_whose_mapping_shares_a_place() -> None:
    stored = dataclasses.replace(
        STORED,
        sources=(*STORED.sources, Source("copycat", "Copycat", "us-solar", None, False)),
        mappings=(*STORED.mappings, HttpMapping("copycat", "leads.example.com", "/api/leads/acme")),
    )
    raw = {
        "sources": [{**COPYCAT, "code": "other"}, {**COPYCAT, "active": True}],
        "mappings": [{"source": "acme", "hostname": "elsewhere.example"}],
    }
    error = ambiguity_of(raw, stored)
    assert str(error).startswith('sources #2 "copycat": ambiguous mapping')
    assert error.ambiguities == (ACME_AMBIGUITY,)


@pytest.mark.parametrize(
    ("sources", "mapping"),
    [
        ([{**COPYCAT, "active": False}], {"source": "copycat", **ACME_PLACE}),
        ([COPYCAT], {"source": "copycat", **ACME_PLACE, "active": False}),
        ([COPYCAT], {"source": "copycat", **ACME_PLACE, "path_prefix": "/api/leads/acme/2"}),
        ([COPYCAT], {"source": "copycat", **ACME_PLACE, "hostname": "other.example.com"}),
        ([], {"source": "acme", **ACME_PLACE}),
    ],
)
def test_places_that_only_one_live_source_holds_are_not_ambiguous(
    sources: list[dict[str, Any]], mapping: dict[str, Any]
) -> None:
    plan = plan_catalog(parse_catalog({"sources": sources, "mappings": [mapping]}), STORED)
    assert plan.ambiguities == ()


def test_a_source_of_an_inactive_offer_takes_no_leads_so_it_is_not_ambiguous() -> None:
    raw: dict[str, Any] = {
        "offers": [
            {"code": "paused", "name": "P", "market": "us", "vertical": "solar", "active": False}
        ],
        "sources": [{**COPYCAT, "offer": "paused"}],
        "mappings": [{"source": "copycat", **ACME_PLACE}],
    }
    assert plan_catalog(parse_catalog(raw), STORED).ambiguities == ()
    raw["offers"][0]["active"] = True
    assert ambiguity_of(raw).ambiguities == (ACME_AMBIGUITY,)


def test_apply_refuses_reactivating_an_offer_whose_source_shares_a_place() -> None:
    paused = Offer("paused", "Paused", "us", "solar", active=False)
    stored = dataclasses.replace(
        STORED,
        offers=(*STORED.offers, paused),
        sources=(*STORED.sources, Source("copycat", "Copycat", "paused")),
        mappings=(*STORED.mappings, HttpMapping("copycat", "leads.example.com", "/api/leads/acme")),
    )
    offer = {
        "code": "paused",
        "name": "Paused",
        "market": "us",
        "vertical": "solar",
        "active": True,
    }
    error = ambiguity_of({"offers": [offer]}, stored)
    assert str(error).startswith("catalog: ambiguous mapping leads.example.com/api/leads/acme")


def test_a_stored_ambiguity_the_apply_keeps_is_listed_and_one_it_widens_is_refused() -> None:
    stored = dataclasses.replace(
        STORED,
        sources=(*STORED.sources, Source("copycat", "Copycat", "us-solar")),
        mappings=(*STORED.mappings, HttpMapping("copycat", "leads.example.com", "/api/leads/acme")),
    )
    unrelated = {"markets": [{"code": "de", "name": "Germany"}]}
    assert plan_catalog(parse_catalog(unrelated), stored).ambiguities == (ACME_AMBIGUITY,)

    third = {
        "sources": [{**COPYCAT, "code": "third"}],
        "mappings": [{"source": "third", **ACME_PLACE}],
    }
    assert ambiguity_of(third, stored).ambiguities == (
        Ambiguity("leads.example.com", "/api/leads/acme", ("acme", "copycat", "third")),
    )

    fixed = {"sources": [{**COPYCAT, "active": False}]}
    assert plan_catalog(parse_catalog(fixed), stored).ambiguities == ()


# --- check --------------------------------------------------------------------------------


def _snapshot(**overrides: Any) -> CatalogSnapshot:
    fields: dict[str, Any] = {
        "markets": (Market("us", "US", "US"),),
        "verticals": (Vertical("v", "V"),),
        "offers": (Offer("live", "Live", "us", "v"), Offer("dead", "Dead", "us", "v", False)),
        "sources": (
            Source("a", "A", "live", "ka"),
            Source("b", "B", "live", "kb"),
            Source("off", "Off", "live", None, False),
            Source("orphan", "Orphan", "dead"),
        ),
        "mappings": (),
        "source_ids": {"a": 1, "b": 2, "off": 3, "orphan": 4},
    }
    fields.update(overrides)
    return CatalogSnapshot(**fields)


def test_check_finds_ambiguity_between_live_sources_only() -> None:
    report = check_catalog(
        _snapshot(
            mappings=(
                HttpMapping("b", "h.example", "/api/leads/x"),
                HttpMapping("a", "h.example", "/api/leads/x"),
                HttpMapping("off", "h.example", "/api/leads/x", active=True),
                HttpMapping("a", "h.example", "/api/leads/y"),
                HttpMapping("b", "h.example", "/api/leads/y", active=False),
            )
        )
    )
    assert report.has_ambiguity
    [error] = report.errors
    assert error.kind == "ambiguous_mapping"
    assert "h.example/api/leads/x" in error.message
    assert "a (source_id 1), b (source_id 2)" in error.message
    assert report.problems[0] == error


def test_check_warns_about_entries_that_take_no_leads() -> None:
    report = check_catalog(
        _snapshot(
            mappings=(
                HttpMapping("off", "h.example", "/api/leads/off"),
                HttpMapping("orphan", "h.example", "/api/leads/orphan"),
                HttpMapping("a", "h.example", "/leads/a"),
                HttpMapping("a", "H.example.", "/api/leads/a/"),
            )
        )
    )
    assert not report.has_ambiguity
    assert report.errors == ()
    kinds = sorted(p.kind for p in report.warnings)
    assert kinds == [
        "mapping_of_inactive_offer",
        "mapping_of_inactive_source",
        "non_canonical_mapping",
        "source_of_inactive_offer",
        "unreachable_mapping",
    ]


def test_a_clean_catalog_has_no_problems() -> None:
    report = check_catalog(STORED)
    assert report.problems == ()
    assert not report.has_ambiguity


def test_the_same_prefix_on_different_hosts_is_not_ambiguous() -> None:
    report = check_catalog(
        _snapshot(
            mappings=(
                HttpMapping("a", "one.example", "/api/leads"),
                HttpMapping("b", "two.example", "/api/leads"),
            )
        )
    )
    assert report.errors == ()
    assert not report.has_ambiguity


# --- describing a source ------------------------------------------------------------------


def test_describe_source_gathers_its_offer_market_vertical_and_active_mappings() -> None:
    snapshot = _snapshot(
        mappings=(
            HttpMapping("a", "h.example", "/api/leads/z"),
            HttpMapping("a", "h.example", "/api/leads/b", active=False),
            HttpMapping("b", "h.example", "/api/leads/other"),
            HttpMapping("a", "g.example", "/"),
        )
    )
    description = describe_source(snapshot, "a")
    assert description.source_id == 1
    assert description.offer.code == "live"
    assert description.market.phone_region == "US"
    assert description.vertical.code == "v"
    assert [m.identity for m in description.mappings] == [
        ("a", "g.example", "/"),
        ("a", "h.example", "/api/leads/z"),
    ]
    assert description.accepts_leads
    assert not describe_source(snapshot, "orphan").accepts_leads
    assert not describe_source(snapshot, "off").accepts_leads


def test_describe_an_unknown_source() -> None:
    with pytest.raises(CatalogEntryNotFound) as caught:
        describe_source(STORED, "nope")
    assert str(caught.value) == 'source "nope": no source has this code'


@pytest.mark.parametrize(
    ("prefix", "path", "postable"),
    [
        ("/", "/api/leads", True),
        ("/api", "/api/leads", True),
        ("/api/leads", "/api/leads", True),
        ("/api/leads/acme", "/api/leads/acme", True),
        ("/api/leadsx", "/api/leadsx", False),
        ("/leads/acme", "/leads/acme", False),
    ],
)
def test_posting_paths(prefix: str, path: str, postable: bool) -> None:
    assert posting_path(prefix) == path
    assert is_postable_prefix(prefix) is postable
