"""Posted fields turned into a typed submission (SPEC §6)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aliases import apply_aliases
from domain.errors import InvalidRequest, LeadError
from domain.submission import (
    CONTACT_FIELDS,
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    Submission,
    check_text,
    parse_submission,
)


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_empty_submission() -> None:
    submission = parse_submission({})
    assert submission.source_id is None
    assert submission.source_key is None
    assert submission.idempotency_key is None
    assert submission.contact == dict.fromkeys(CONTACT_FIELDS)
    assert submission.is_test is False
    assert submission.attributes == {}


def test_full_submission() -> None:
    submission = parse_submission(
        {
            "source_id": "7",
            "source_key": " Acme ",
            "idempotency_key": "k-1",
            "email": " Ann@Example.com ",
            "phone": 4155552671,
            "first_name": "Ann",
            "last_name": None,
            "postal_code": 94107,
            "is_test": "true",
            "utm_source": "fb",
            "consent": {"tcpa": True, "at": [1, 2.5]},
        }
    )
    # Selectors and contact values stay exactly as posted: normalization is a later step.
    assert submission.source_id == "7"
    assert submission.source_key == " Acme "
    assert submission.idempotency_key == "k-1"
    assert submission.contact["email"] == " Ann@Example.com "
    assert submission.contact["phone"] == "4155552671"
    assert submission.contact["postal_code"] == "94107"
    assert submission.contact["last_name"] is None
    assert submission.contact["city"] is None
    assert set(submission.contact) == set(CONTACT_FIELDS)
    assert submission.is_test is True
    assert submission.attributes == {"utm_source": "fb", "consent": {"tcpa": True, "at": [1, 2.5]}}


@pytest.mark.parametrize(
    ("source_id", "expected"),
    [(7, 7), ("7", "7"), (True, True), (False, False), (1.5, 1.5), ([1], [1])],
)
def test_source_id_passes_through_raw(source_id: object, expected: object) -> None:
    # Booleans and other odd values are not rejected here: invalid_source decides later.
    assert parse_submission({"source_id": source_id}).source_id == expected


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"EMAIL": "a@b.c"}, "email", "a@b.c"),
        ({"Email": "a@b.c"}, "email", "a@b.c"),
        ({"email": "a@b.c", "EMAIL": "a@b.c"}, "email", "a@b.c"),  # same value: fine
        ({"Phone": 4155552671}, "phone", "4155552671"),
        ({"phone": -5}, "phone", "-5"),
        ({"phone": 0}, "phone", "0"),
        ({"phone": "+1 (415) 555-2671"}, "phone", "+1 (415) 555-2671"),
        ({"postal_code": 2000}, "postal_code", "2000"),
        ({"postal_code": "02134"}, "postal_code", "02134"),
        ({"first_name": ""}, "first_name", ""),
        ({"country": None}, "country", None),
        ({"email": "x" * 320}, "email", "x" * 320),
        ({"phone": "1" * 64}, "phone", "1" * 64),
        ({"phone": 10**63}, "phone", "1" + "0" * 63),
        ({"city": "y" * 200}, "city", "y" * 200),
        ({"address": "Rue de l'Église 3"}, "address", "Rue de l'Église 3"),
    ],
)
def test_contact_values(fields: dict[str, object], field: str, expected: str | None) -> None:
    submission = parse_submission(fields)
    assert submission.contact[field] == expected
    assert submission.attributes == {}


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"email": "a@b.c", "EMAIL": "x@y.z"}, "email", "conflicting_values"),
        ({"source_id": 7, "Source_Id": "7"}, "source_id", "conflicting_values"),
        ({"is_test": True, "IS_TEST": 1}, "is_test", "conflicting_values"),
        ({"email": 5}, "email", "wrong_type"),
        ({"email": True}, "email", "wrong_type"),
        ({"first_name": ["Ann"]}, "first_name", "wrong_type"),
        ({"city": {"name": "x"}}, "city", "wrong_type"),
        ({"country": 1.5}, "country", "wrong_type"),
        ({"phone": True}, "phone", "wrong_type"),
        ({"phone": 4155552671.0}, "phone", "wrong_type"),
        ({"postal_code": False}, "postal_code", "wrong_type"),
        ({"email": "x" * 321}, "email", "too_long"),
        ({"phone": "1" * 65}, "phone", "too_long"),
        ({"phone": 10**64}, "phone", "too_long"),
        ({"phone": -(10**63)}, "phone", "too_long"),  # the sign counts
        ({"phone": 10**4000}, "phone", "too_long"),
        ({"last_name": "y" * 201}, "last_name", "too_long"),
        ({"postal_code": 10**200}, "postal_code", "too_long"),
        ({"is_test": "yes"}, "is_test", "wrong_type"),
        ({"is_test": 2}, "is_test", "wrong_type"),
        ({"is_test": 1.0}, "is_test", "wrong_type"),
        ({"is_test": []}, "is_test", "wrong_type"),
    ],
)
def test_rejected_fields(fields: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_submission(fields)
    assert raised.value.details == {"reason": reason, "field": field}
    assert raised.value.code == "invalid_request"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("1", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("", False),
        ("  ", False),
    ],
)
def test_is_test(value: object, expected: bool) -> None:
    assert parse_submission({"is_test": value}).is_test is expected


def test_missing_is_test_is_false() -> None:
    assert parse_submission({"email": "a@b.c"}).is_test is False


@pytest.mark.parametrize(
    "name",
    ["utm_source", "e-mail", "emails", "email ", "source-id", "\u212aey", "SOURCE_\u212aEY", ""],
)
def test_unknown_names_are_attributes(name: str) -> None:
    submission = parse_submission({name: "v"})
    assert submission.attributes == {name: "v"}
    assert submission.source_key is None


def test_attribute_values_are_kept_as_posted() -> None:
    value = {"nested": [1, "two", None, 3.25, False, {"k": []}]}
    assert parse_submission({"extra": value}).attributes == {"extra": value}


def test_attribute_limit() -> None:
    at_limit = {f"a{i}": i for i in range(MAX_ATTRIBUTES)}
    assert len(parse_submission({**at_limit, "email": "a@b.c"}).attributes) == MAX_ATTRIBUTES
    with pytest.raises(InvalidRequest) as raised:
        parse_submission({**at_limit, "one_more": 1})
    assert raised.value.details == {"reason": "too_many_fields"}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"email": "a\x00@b.c"}, "invalid_characters"),
        ({"first_name": "\ud800"}, "invalid_characters"),
        ({"first_name": "a\udfffb"}, "invalid_characters"),
        ({"note\x00": "x"}, "invalid_characters"),
        ({"\udc80": "x"}, "invalid_characters"),
        ({"extra": {"k\x00": 1}}, "invalid_characters"),
        ({"extra": ["ok", ["\ud83d"]]}, "invalid_characters"),
        ({"extra": float("nan")}, "invalid_number"),
        ({"extra": [float("inf")]}, "invalid_number"),
        ({"extra": {"x": float("-inf")}}, "invalid_number"),
        ({"extra": _nested(MAX_DEPTH)}, "too_deep"),
        ({"extra": {1, 2}}, "wrong_type"),
        ({"extra": b"bytes"}, "wrong_type"),
    ],
)
def test_rejected_text(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_submission(fields)
    assert raised.value.details == {"reason": reason}


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -1.5,
        1e308,
        "",
        "plain",
        "😀 emoji is a surrogate pair only in UTF-16",
        "\ud7ff\ue000",  # just outside the surrogate range
        [],
        {},
        {"a": [1, {"b": None}]},
        ("tuple", 1),
        _nested(MAX_DEPTH - 1),
    ],
)
def test_check_text_accepts(value: object) -> None:
    check_text(value)


def test_check_text_depth_limit() -> None:
    check_text(_nested(MAX_DEPTH))
    with pytest.raises(InvalidRequest) as raised:
        check_text(_nested(MAX_DEPTH + 1))
    assert raised.value.details == {"reason": "too_deep"}
    # parse_submission counts the posted object itself as one level.
    parse_submission({"extra": _nested(MAX_DEPTH - 1)})


# --- a source's aliases ---------------------------------------------------------------------

_ALIAS_NAMES = ("fname", "zip", "mail", "e_mail", "flag")
_TARGETS = ("first_name", "postal_code", "email", "phone", "is_test")
_OTHER_NAMES = ("FName", "ZIP", "email", "EMAIL", "postal_code", "Postal_Code", "phone")
_NAMES = st.sampled_from((*_ALIAS_NAMES, *_OTHER_NAMES, "first_name", "is_test", "IS_TEST", "x"))
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 10**70),
    st.sampled_from(["", "a", "1", "true", "maybe", "x" * 201]),
)


def _outcome(parse: Callable[[], Submission]) -> object:
    try:
        fields = parse()
    except LeadError as error:
        return error.code, dict(error.details)
    return fields.contact, fields.is_test, fields.attributes


@given(
    posted=st.dictionaries(_NAMES, _VALUES, max_size=6),
    aliases=st.dictionaries(st.sampled_from(_ALIAS_NAMES), st.sampled_from(_TARGETS)),
)
@settings(max_examples=300)
def test_aliases_give_what_renaming_and_typing_the_posted_fields_gives(
    posted: dict[str, object], aliases: dict[str, str]
) -> None:
    """`with_aliases` types only the renamed values, and gives what the documented rule gives:
    the posted fields renamed by the aliases (in posted order), then the field rules on them."""
    try:
        submission = parse_submission(posted)
    except InvalidRequest:
        return  # refused before the source is known, whatever its aliases
    renamed = _outcome(lambda: parse_submission(apply_aliases(posted, aliases)))
    assert _outcome(lambda: submission.with_aliases(aliases)) == renamed


def test_aliases_type_only_what_they_rename() -> None:
    submission = parse_submission({"fname": "Jane", "email": "a@b.co", "x": 1})
    assert submission.with_aliases({"zip": "postal_code"}) is submission
    aliased = submission.with_aliases({"fname": "first_name"})
    assert (aliased.contact["first_name"], aliased.contact["email"]) == ("Jane", "a@b.co")
    assert aliased.attributes == {"x": 1}
    with pytest.raises(InvalidRequest) as error:
        parse_submission({"fname": 5}).with_aliases({"fname": "first_name"})
    assert error.value.details == {"reason": "wrong_type", "field": "first_name"}
