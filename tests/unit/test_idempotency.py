"""Idempotency keys: client keys, the Idempotency-Key header, derived keys, lead ids."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence

import pytest

from domain.errors import IdempotencyDerivationFailed, InvalidIdempotencyKeyFormat
from domain.idempotency import (
    LEAD_ID_NAMESPACE,
    MAX_KEY_LENGTH,
    lead_id_for,
    parse_idempotency_header,
    reconcile_client_key,
    validate_client_key,
)
from tests.support import derive_idempotency_key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("  abc  ", "abc"),
        ("\tabc\n", "abc"),
        ("\u00a0abc\u00a0", "abc"),
        ("!", "!"),
        ("~", "~"),
        ("order-42:retry/1", "order-42:retry/1"),
        ('a"b\\c', 'a"b\\c'),
        ("x" * MAX_KEY_LENGTH, "x" * MAX_KEY_LENGTH),
        (" " + "x" * MAX_KEY_LENGTH + " ", "x" * MAX_KEY_LENGTH),
        ("8e0f3c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b", "8e0f3c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"),
    ],
)
def test_validate_client_key(value: str, expected: str) -> None:
    assert validate_client_key(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("\u3000", "empty"),
        ("x" * (MAX_KEY_LENGTH + 1), "too_long"),
        ("a b", "invalid_characters"),
        ("a\tb", "invalid_characters"),
        ("ab\x7f", "invalid_characters"),
        ("ab\x00", "invalid_characters"),
        ("clé", "invalid_characters"),
        ("\uff41\uff42\uff43", "invalid_characters"),
        ("a\u00a0b", "invalid_characters"),
    ],
)
def test_validate_client_key_rejects(value: str, reason: str) -> None:
    with pytest.raises(InvalidIdempotencyKeyFormat) as raised:
        validate_client_key(value)
    assert raised.value.details == {"reason": reason}
    assert raised.value.code == "invalid_idempotency_key_format"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        (["abc"], "abc"),
        ([" abc "], "abc"),
        (['"abc"'], "abc"),
        ([' "abc" '], "abc"),
        (['"a\\"b"'], 'a"b'),
        (['"a\\\\b"'], "a\\b"),
        (['" abc "'], "abc"),  # sf-string content is trimmed like any client key
        (['abc"'], 'abc"'),  # a bare token may contain a quote that does not lead
        (["8e0f3c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"], "8e0f3c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"),
        ((), None),
        (("abc",), "abc"),
    ],
)
def test_parse_idempotency_header(values: Sequence[str], expected: str | None) -> None:
    assert parse_idempotency_header(values) == expected


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (["a", "b"], "multiple_headers"),
        (["a", "a"], "multiple_headers"),
        (['"abc'], "malformed_header"),
        (['"'], "malformed_header"),
        (['"abc"x'], "malformed_header"),
        (['"abc" "def"'], "malformed_header"),
        (['"a\\nb"'], "malformed_header"),
        (['"abc\\"'], "malformed_header"),
        (['"ab\tc"'], "malformed_header"),
        (['"clé"'], "malformed_header"),
        ([""], "empty"),
        (['""'], "empty"),
        (['"   "'], "empty"),
        (['"a b"'], "invalid_characters"),
        (["a b"], "invalid_characters"),
        (['"' + "x" * 256 + '"'], "too_long"),
    ],
)
def test_parse_idempotency_header_rejects(values: list[str], reason: str) -> None:
    with pytest.raises(InvalidIdempotencyKeyFormat) as raised:
        parse_idempotency_header(values)
    assert raised.value.details == {"reason": reason}


@pytest.mark.parametrize(
    ("header_key", "field_key", "expected"),
    [
        (None, None, None),
        (None, "", None),
        (None, "  ", None),
        ("abc", None, "abc"),
        ("abc", "", "abc"),
        (None, "abc", "abc"),
        (None, "  abc ", "abc"),
        ("abc", "abc", "abc"),
        ("abc", " abc\t", "abc"),
        (" abc ", "abc", "abc"),
    ],
)
def test_reconcile_client_key(header_key: str | None, field_key: object, expected: str) -> None:
    assert reconcile_client_key(header_key, field_key) == expected


@pytest.mark.parametrize(
    ("header_key", "field_key", "reason"),
    [
        ("abc", "abd", "header_body_mismatch"),
        ("abc", "ABC", "header_body_mismatch"),
        (None, 42, "not_a_string"),
        ("42", 42, "not_a_string"),
        (None, True, "not_a_string"),
        (None, ["abc"], "not_a_string"),
        (None, "a b", "invalid_characters"),
        ("abc", "x" * 300, "too_long"),
    ],
)
def test_reconcile_client_key_rejects(
    header_key: str | None, field_key: object, reason: str
) -> None:
    with pytest.raises(InvalidIdempotencyKeyFormat) as raised:
        reconcile_client_key(header_key, field_key)
    assert raised.value.details == {"reason": reason}


def _sha(canonical_json: str) -> str:
    return "d1:" + hashlib.sha256(canonical_json.encode("utf-8")).hexdigest()


def test_derived_key_worked_example() -> None:
    fields = {
        "email": "  Zoë@Example.COM ",
        "phone": "+1 (415) 555-2671",
        "first_name": " Zoë ",
        "last_name": "",
        "city": "  ",
        "country": None,
        "postal_code": "94107",
    }
    key = derive_idempotency_key(
        fields,
        normalized_email="zoë@example.com",
        normalized_phone="+14155552671",
        is_test=False,
        attributes={"utm_source": "fb", "Ärger": [1, 2.5, None], "a": {"z": True, "b": "ü"}},
    )
    # Hand-written canonical JSON: keys sorted at every level (code points, so "Ä" after
    # "u"), no spaces, non-ASCII kept as UTF-8, empty contact fields omitted.
    expected = (
        '{"attributes":{"a":{"b":"ü","z":true},"utm_source":"fb","Ärger":[1,2.5,null]},'
        '"email":"zoë@example.com","first_name":"Zoë","is_test":false,'
        '"phone":"+14155552671","postal_code":"94107"}'
    )
    assert key == _sha(expected)
    assert key == "d1:" + hashlib.sha256(expected.encode()).hexdigest()
    assert len(key) == 3 + 64


@pytest.mark.parametrize(
    ("fields", "email", "phone", "is_test", "attributes", "canonical"),
    [
        ({}, "a@b.c", None, False, {}, '{"attributes":{},"email":"a@b.c","is_test":false}'),
        (
            {},
            None,
            "+14155552671",
            True,
            {},
            '{"attributes":{},"is_test":true,"phone":"+14155552671"}',
        ),
        (
            # email and phone enter normalized, whatever the raw fields say.
            {"email": "RAW@X", "phone": "raw"},
            "a@b.c",
            None,
            False,
            {},
            '{"attributes":{},"email":"a@b.c","is_test":false}',
        ),
        (
            {"region": " CA ", "address": "1 Main St"},
            "a@b.c",
            None,
            False,
            {},
            '{"address":"1 Main St","attributes":{},"email":"a@b.c","is_test":false,"region":"CA"}',
        ),
        (
            {"first_name": "\u00a0"},
            "a@b.c",
            None,
            False,
            {"n": 1},
            '{"attributes":{"n":1},"email":"a@b.c","is_test":false}',
        ),
        (
            {},
            "",
            "+14155552671",
            False,
            {},
            '{"attributes":{},"is_test":false,"phone":"+14155552671"}',
        ),
    ],
)
def test_derived_key_layout(
    fields: Mapping[str, str | None],
    email: str | None,
    phone: str | None,
    is_test: bool,
    attributes: Mapping[str, object],
    canonical: str,
) -> None:
    key = derive_idempotency_key(
        fields,
        normalized_email=email,
        normalized_phone=phone,
        is_test=is_test,
        attributes=attributes,
    )
    assert key == _sha(canonical)


@pytest.mark.parametrize(("email", "phone"), [(None, None), ("", None), (None, ""), ("", "")])
def test_derivation_needs_email_or_phone(email: str | None, phone: str | None) -> None:
    with pytest.raises(IdempotencyDerivationFailed) as raised:
        derive_idempotency_key(
            {"first_name": "Ann", "email": "not normalizable"},
            normalized_email=email,
            normalized_phone=phone,
            is_test=False,
            attributes={},
        )
    assert raised.value.details == {"required_any_of": ["email", "phone"]}
    assert raised.value.code == "idempotency_derivation_failed"


@pytest.mark.parametrize(
    ("source_id", "key", "expected"),
    [
        (7, "abc", uuid.uuid5(LEAD_ID_NAMESPACE, "7:abc")),
        (1, "d1:" + "0" * 64, uuid.uuid5(LEAD_ID_NAMESPACE, "1:d1:" + "0" * 64)),
        (2**63 - 1, "k", uuid.uuid5(LEAD_ID_NAMESPACE, f"{2**63 - 1}:k")),
    ],
)
def test_lead_id_for(source_id: int, key: str, expected: uuid.UUID) -> None:
    assert lead_id_for(source_id, key) == expected
    assert lead_id_for(source_id, key).version == 5


def test_lead_id_pinned_value() -> None:
    # Pinned literal: a change of namespace or of the name layout would re-key every lead.
    assert uuid.UUID("475b17ed-23d3-5374-9bae-ea431261849e") == LEAD_ID_NAMESPACE
    assert lead_id_for(7, "abc") == uuid.UUID("d68e9bfa-3e08-5609-8f06-df5299174015")


def test_lead_id_differs_per_source() -> None:
    assert lead_id_for(1, "abc") != lead_id_for(2, "abc")
    assert lead_id_for(1, "2:abc") != lead_id_for(12, "abc")
