"""The intake fields of a source in catalog documents: parsing, planning, export, check, docs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.catalog_docs import posting_instructions
from domain.catalog import (
    CatalogError,
    CatalogSnapshot,
    HttpMapping,
    Market,
    Offer,
    Source,
    Vertical,
    catalog_document,
    describe_source,
    parse_catalog,
)
from domain.catalog_check import check_catalog
from domain.catalog_plan import plan_catalog
from domain.replies import ReplyFormat

KEY = "acme-0123456789abcdef"  # 21 characters


def source(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": "acme", "name": "Acme", "offer": "us-solar"}
    entry.update(fields)
    return entry


def parsed_source(**fields: Any) -> Source:
    return parse_catalog({"sources": [source(**fields)]}).sources[0].record


def stored(*sources: Source, mappings: tuple[HttpMapping, ...] = ()) -> CatalogSnapshot:
    return CatalogSnapshot(
        markets=(Market("us", "United States", "US"),),
        verticals=(Vertical("solar", "Solar"),),
        offers=(Offer("us-solar", "US solar", "us", "solar"),),
        sources=sources,
        mappings=mappings,
        source_ids={s.code: n for n, s in enumerate(sources, start=1)},
    )


# --- parsing ------------------------------------------------------------------------------


def test_intake_fields_are_parsed_and_canonicalized() -> None:
    record = parsed_source(
        source_key=KEY.upper(),
        require_key=True,
        allowed_networks=["203.0.113.0/24", " 2001:DB8:0::/32", "198.51.100.7"],
        field_aliases={"ZIP": "postal_code", "fname": "First_Name", " e-mail ": "email"},
    )
    assert record.require_key is True
    assert record.allowed_networks == ("203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32")
    assert record.field_aliases == (
        ("e-mail", "email"),
        ("fname", "first_name"),
        ("zip", "postal_code"),
    )
    assert record.aliases == {"e-mail": "email", "fname": "first_name", "zip": "postal_code"}


def test_left_out_intake_fields_default_to_off_and_are_recorded_as_omitted() -> None:
    entry = parse_catalog({"sources": [source()]}).sources[0]
    assert (entry.record.require_key, entry.record.allowed_networks) == (False, ())
    assert entry.record.field_aliases == ()
    assert {"require_key", "allowed_networks", "field_aliases"} <= entry.omitted


def test_null_networks_and_aliases_mean_none() -> None:
    record = parsed_source(allowed_networks=None, field_aliases=None)
    assert (record.allowed_networks, record.field_aliases) == ((), ())


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"require_key": "yes"}, "require_key", "true or false"),
        ({"require_key": None}, "require_key", "true or false"),
        ({"allowed_networks": "203.0.113.0/24"}, "allowed_networks", "must be a list"),
        ({"allowed_networks": [24]}, "allowed_networks", "must be a string"),
        ({"allowed_networks": ["intranet"]}, "allowed_networks", '"intranet" is not a network'),
        ({"allowed_networks": ["203.0.113.9/24"]}, "allowed_networks", "write 203.0.113.0/24"),
        (
            {"allowed_networks": ["203.0.113.0/24", "203.0.113.0/24 "]},
            "allowed_networks",
            "203.0.113.0/24 is listed twice",
        ),
        ({"field_aliases": ["fname"]}, "field_aliases", "must be a mapping"),
        # YAML reads the key `on` as true.
        ({"field_aliases": {True: "email"}}, "field_aliases", "in YAML, quote the value"),
        ({"field_aliases": {" ": "email"}}, "field_aliases", "non-empty string"),
        ({"field_aliases": {"f\tname": "first_name"}}, "field_aliases", "control characters"),
        ({"field_aliases": {"Email": "phone"}}, "field_aliases", '"Email" is already a field'),
        ({"field_aliases": {"SOURCE_ID": "phone"}}, "field_aliases", "already a field name"),
        (
            {"field_aliases": {"fname": "first_name", "FName": "last_name"}},
            "field_aliases",
            '"FName" is the same name as "fname"',
        ),
        ({"field_aliases": {"sid": "source_id"}}, "field_aliases", "it selects the source"),
        ({"field_aliases": {"key": "Source_Key"}}, "field_aliases", "it selects the source"),
        ({"field_aliases": {"ref": "idempotency_key"}}, "field_aliases", "selects the source"),
        ({"field_aliases": {"fname": "given_name"}}, "field_aliases", "one of email, phone"),
        ({"field_aliases": {"fname": None}}, "field_aliases", "must be a field name"),
    ],
)
def test_invalid_intake_fields_name_the_entry_and_field(
    fields: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog({"sources": [source(**fields)]})
    assert caught.value.entry == 'sources #1 "acme"'
    assert caught.value.field == field
    assert words in caught.value.problem


# --- planning: the key requirement --------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "stored_sources", "words"),
    [
        ({"require_key": True}, (), "this source has no source_key"),
        ({"require_key": True, "source_key": "short-key"}, (), "its source_key is shorter"),
        ({"require_key": True, "source_key": "k" * 15}, (), "is shorter"),
        # The stored key is kept, and too short for the requirement the file adds.
        ({"require_key": True}, (Source("acme", "Acme", "us-solar", "short-key"),), "shorter"),
        # The stored requirement is kept, and the file clears the key.
        (
            {"source_key": None},
            (Source("acme", "Acme", "us-solar", KEY, require_key=True),),
            "has no source_key",
        ),
    ],
)
def test_a_required_key_must_exist_and_be_long(
    fields: dict[str, Any], stored_sources: tuple[Source, ...], words: str
) -> None:
    document = parse_catalog({"sources": [source(**fields)]})
    with pytest.raises(CatalogError) as caught:
        plan_catalog(document, stored(*stored_sources))
    assert caught.value.entry == 'sources #1 "acme"'
    assert caught.value.field == "require_key"
    assert "at least 16 characters" in caught.value.problem
    assert words in caught.value.problem
    assert "short-key" not in str(caught.value)


def test_a_required_key_of_16_characters_is_enough() -> None:
    for fields, stored_sources in [
        ({"require_key": True, "source_key": "k" * 16}, ()),
        ({"require_key": True}, (Source("acme", "Acme", "us-solar", KEY),)),
        ({"source_key": KEY}, (Source("acme", "Acme", "us-solar", None, require_key=True),)),
    ]:
        document = parse_catalog({"sources": [source(**fields)]})
        assert plan_catalog(document, stored(*stored_sources)).sources[0].record.require_key


def test_intake_fields_are_updates_and_omitted_ones_keep_their_stored_values() -> None:
    current = Source(
        "acme",
        "Acme",
        "us-solar",
        KEY,
        require_key=True,
        allowed_networks=("203.0.113.0/24",),
        field_aliases=(("fname", "first_name"),),
    )
    unchanged = plan_catalog(parse_catalog({"sources": [source()]}), stored(current))
    assert unchanged.sources[0].action == "unchanged"
    assert unchanged.sources[0].record == current

    document = parse_catalog(
        {
            "sources": [
                source(require_key=False, allowed_networks=[], field_aliases={"zip": "postal_code"})
            ]
        }
    )
    change = plan_catalog(document, stored(current)).sources[0]
    assert change.action == "update"
    assert change.changed_fields == ("require_key", "allowed_networks", "field_aliases")


# --- export -------------------------------------------------------------------------------


def test_export_lists_intake_fields_only_for_sources_that_use_them() -> None:
    plain = Source("plain", "Plain", "us-solar", None)
    secured = Source(
        "secured",
        "Secured",
        "us-solar",
        KEY,
        require_key=True,
        allowed_networks=("203.0.113.0/24", "2001:db8::/32"),
        field_aliases=(("fname", "first_name"), ("zip", "postal_code")),
    )
    snapshot = stored(plain, secured)
    exported = catalog_document(snapshot)
    assert exported["sources"] == [
        {"code": "plain", "name": "Plain", "offer": "us-solar", "source_key": None, "active": True},
        {
            "code": "secured",
            "name": "Secured",
            "offer": "us-solar",
            "source_key": KEY,
            "active": True,
            "require_key": True,
            "allowed_networks": ["203.0.113.0/24", "2001:db8::/32"],
            "field_aliases": {"fname": "first_name", "zip": "postal_code"},
        },
    ]
    assert not plan_catalog(parse_catalog(exported), snapshot).has_changes


@given(
    flags=st.lists(
        st.tuples(
            st.booleans(),
            st.lists(st.sampled_from(["203.0.113.0/24", "2001:db8::/32", "10.1.2.3/32"]),
                     unique=True, max_size=3),
            st.dictionaries(st.sampled_from(["fname", "zip", "e-mail", "tel"]),
                            st.sampled_from(["first_name", "postal_code", "email", "phone"]),
                            max_size=3),
        ),
        max_size=4,
    )
)  # fmt: skip
def test_export_round_trip_property_with_intake_fields(
    flags: list[tuple[bool, list[str], dict[str, str]]],
) -> None:
    snapshot = stored(
        *(
            Source(
                f"s{i}",
                "S",
                "us-solar",
                f"key-{i}-0123456789abcdef",
                require_key=require,
                allowed_networks=tuple(networks),
                field_aliases=tuple(sorted(aliases.items())),
            )
            for i, (require, networks, aliases) in enumerate(flags)
        )
    )
    exported = catalog_document(snapshot)
    again = copy.deepcopy(exported)
    assert not plan_catalog(parse_catalog(exported), snapshot).has_changes
    assert exported == again


# --- check --------------------------------------------------------------------------------


def test_check_warns_when_a_source_requiring_its_key_is_also_posted_to_by_url() -> None:
    secured = Source("acme", "Acme", "us-solar", KEY, require_key=True)
    report = check_catalog(
        stored(
            secured,
            mappings=(
                HttpMapping("acme", "leads.example.com", "/api/leads/acme"),
                HttpMapping("acme", "leads.example.com", "/api/leads/old", active=False),
            ),
        )
    )
    [warning] = report.problems
    assert warning.kind == "required_key_on_mapping"
    assert warning.message == (
        "source acme requires its key and is mapped to leads.example.com/api/leads/acme: posts "
        "there are refused unless they also send source_key in the body or query string"
    )
    assert not report.has_ambiguity
    assert check_catalog(stored(secured)).problems == ()


def test_check_warns_about_intake_settings_that_cannot_work_as_stored() -> None:
    # Rows written with plain SQL, bypassing the catalog's validation.
    report = check_catalog(
        stored(
            Source("nokey", "N", "us-solar", None, require_key=True),
            Source("short", "S", "us-solar", "short-key", require_key=True),
            Source("net", "N", "us-solar", allowed_networks=("::ffff:203.0.113.0/120",)),
            Source(
                "alias",
                "A",
                "us-solar",
                field_aliases=(("FName", "first_name"), ("mail", "source_id"), ("zip", "zip")),
            ),
            Source("off", "Off", "us-solar", None, active=False, require_key=True),
            Source(
                "fine",
                "Fine",
                "us-solar",
                KEY,
                require_key=True,
                allowed_networks=("203.0.113.0/24",),
                field_aliases=(("fname", "first_name"),),
            ),
        )
    )
    kinds = sorted(p.kind for p in report.warnings)
    assert kinds == [
        "required_key_missing",
        "required_key_short",
        "unusable_field_alias",
        "unusable_field_alias",
        "unusable_field_alias",
        "unusable_network",
    ]
    assert "short-key" not in " ".join(p.message for p in report.problems)


# --- docs ---------------------------------------------------------------------------------


def _docs(src: Source, mapped: bool = True) -> str:
    mappings = (HttpMapping(src.code, "leads.example.com", "/api/leads/acme"),) if mapped else ()
    return posting_instructions(describe_source(stored(src, mappings=mappings), src.code))


def test_docs_state_the_key_requirement_networks_and_aliases() -> None:
    text = _docs(
        Source(
            "acme",
            "Acme",
            "us-solar",
            KEY,
            require_key=True,
            allowed_networks=("203.0.113.0/24", "2001:db8::/32"),
            field_aliases=(("fname", "first_name"), ("zip", "postal_code")),
        )
    )
    assert "source_key: required in every post" in text
    assert "POST http://localhost:8000/api/leads with source_key in the body" in text
    assert "accepted only from 203.0.113.0/24, 2001:db8::/32" in text
    assert "403 client_not_allowed" in text
    assert "  you send  stored as\n  fname     first_name\n  zip       postal_code\n" in text
    # The example posts to the mapped URL and still carries the key, in the source's names.
    example = text.split("Example\n")[1]
    assert "https://leads.example.com/api/leads/acme" in example
    assert f'"source_key": "{KEY}"' in example
    assert '"fname": "Jane"' in example
    assert '"first_name"' not in example


def test_docs_of_an_open_source_say_so_and_list_no_aliases() -> None:
    text = _docs(Source("acme", "Acme", "us-solar", KEY))
    assert "source_key: not required" in text
    assert "posts are accepted from any address" in text
    assert "you send" not in text
    assert KEY not in text.split("Example\n")[1]


def test_docs_show_the_example_and_its_answers_in_the_sources_reply_format() -> None:
    xml = _docs(Source("acme", "Acme", "us-solar", KEY, reply_format=ReplyFormat.XML))
    assert "Responses (XML unless your Accept header asks for" in xml
    assert "<lead><lead_id>" in xml and "<replayed>false</replayed></lead>" in xml
    assert "<error><code>invalid_source</code>" in xml
    example = xml.split("Example\n")[1]
    assert "-H 'Content-Type: application/xml'" in example
    assert "<lead><email>jane.doe@example.com</email>" in example
    text = _docs(Source("acme", "Acme", "us-solar", KEY, reply_format=ReplyFormat.TEXT))
    assert "Responses (TEXT unless" in text
    assert "    replayed=false\n" in text and "    error.code=invalid_source\n" in text
    assert "-H 'Content-Type: application/json'" in text.split("Example\n")[1]
    plain = _docs(Source("acme", "Acme", "us-solar", KEY))
    assert "Responses (JSON unless" in plain and '"replayed": false}' in plain
