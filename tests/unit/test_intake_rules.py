"""Field aliases, the stored User-Agent, constant-time key comparison and the intake errors."""

from __future__ import annotations

import hmac
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.aliases import ALIAS_TARGETS, apply_aliases, fold_field_name, is_known_field_name
from domain.client_address import parse_networks
from domain.errors import ClientNotAllowed, InvalidRequest, InvalidSourceKey, SourceKeyRequired
from domain.intake import MAX_USER_AGENT_CHARS, admit_lead, keys_match, sanitize_user_agent
from domain.submission import parse_submission

ALIASES = {"fname": "first_name", "zip": "postal_code", "e-mail": "email", "mail": "email"}

# --- aliases ------------------------------------------------------------------------------


def test_aliases_rename_and_leave_everything_else_as_posted() -> None:
    posted = {"FName": "Jane", "ZIP": 94105, "Email": "j@example.com", "utm": "x"}
    assert apply_aliases(posted, ALIASES) == {
        "first_name": "Jane",
        "postal_code": 94105,
        "Email": "j@example.com",
        "utm": "x",
    }


def test_no_aliases_is_the_identity() -> None:
    posted = {"fname": "Jane", "EMAIL": "a@b.example"}
    assert apply_aliases(posted, {}) == posted


def test_an_alias_and_its_target_with_equal_values_are_one_field() -> None:
    posted = {"e-mail": "a@b.example", "EMAIL": "a@b.example", "mail": "a@b.example"}
    assert apply_aliases(posted, ALIASES) == {"email": "a@b.example"}
    posted = {"EMAIL": "a@b.example", "e-mail": "a@b.example"}
    assert apply_aliases(posted, ALIASES) == {"EMAIL": "a@b.example"}


@pytest.mark.parametrize(
    "posted",
    [
        {"e-mail": "a@b.example", "email": "c@d.example"},
        {"email": "c@d.example", "E-Mail": "a@b.example"},
        {"mail": "a@b.example", "e-mail": "c@d.example"},
        # Different JSON values even though Python calls them equal.
        {"zip": 1, "postal_code": True},
        {"fname": None, "first_name": "Jane"},
    ],
)
def test_an_alias_and_its_target_with_different_values_conflict(
    posted: dict[str, object],
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        apply_aliases(posted, ALIASES)
    assert caught.value.details["reason"] == "conflicting_values"
    assert caught.value.details["field"] in ALIAS_TARGETS


def test_aliased_fields_then_pass_the_field_rules_like_canonical_ones() -> None:
    aliased = parse_submission(apply_aliases({"fname": "Jane", "zip": 94105}, ALIASES))
    canonical = parse_submission({"first_name": "Jane", "postal_code": 94105})
    assert aliased == canonical


def test_names_fold_in_their_ascii_letters_only() -> None:
    assert fold_field_name("FName") == "fname"
    # KELVIN SIGN lower-cases to "k" with str.lower(); it must not become a known name.
    assert fold_field_name("\u212aey") == "\u212aey"
    assert not is_known_field_name("source_\u212aey")
    assert is_known_field_name("Source_Key")
    assert not is_known_field_name("fname")


_names = st.text(alphabet="abcdEFG_-", min_size=1, max_size=5)


@given(
    posted=st.dictionaries(_names, st.one_of(st.none(), st.booleans(), st.text(max_size=3))),
    aliases=st.dictionaries(_names.map(fold_field_name), st.sampled_from(ALIAS_TARGETS)),
)
def test_aliasing_loses_no_unaliased_field_and_is_idempotent(
    posted: dict[str, object], aliases: dict[str, str]
) -> None:
    try:
        renamed = apply_aliases(posted, aliases)
    except InvalidRequest:
        return
    targets = set(aliases.values())
    for name, value in posted.items():
        folded = fold_field_name(name)
        if folded not in aliases and folded not in targets:
            assert renamed[name] == value
    assert not any(fold_field_name(name) in aliases for name in renamed)
    assert apply_aliases(renamed, aliases) == renamed


# --- User-Agent ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (None, None),
        ("", ""),
        ("Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("a\x00b\tc\x1fd\x7fe", "a\ufffdb\ufffdc\ufffdd\x7fe"),
        ("caf\u00e9 \u2603", "caf\u00e9 \u2603"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_user_agent_is_kept_as_sent_but_storable(sent: str | None, stored: str | None) -> None:
    assert sanitize_user_agent(sent) == stored


def test_user_agent_is_cut_to_1024_characters() -> None:
    assert MAX_USER_AGENT_CHARS == 1024
    assert sanitize_user_agent("é" * 5000) == "é" * 1024
    assert sanitize_user_agent("\x00" * 1025) == "\ufffd" * 1024


@given(st.text())
def test_user_agent_is_bounded_storable_and_stable(sent: str) -> None:
    stored = sanitize_user_agent(sent)
    assert stored is not None
    assert len(stored) == min(len(sent), MAX_USER_AGENT_CHARS)
    assert not any(ord(c) < 0x20 or 0xD800 <= ord(c) < 0xE000 for c in stored)
    stored.encode("utf-8")
    assert sanitize_user_agent(stored) == stored


# --- source keys --------------------------------------------------------------------------


def test_keys_match_only_when_equal() -> None:
    assert keys_match("acme-solar-us-2024", "acme-solar-us-2024")
    assert not keys_match("acme-solar-us-2025", "acme-solar-us-2024")
    assert not keys_match("acme", "acme-solar-us-2024")
    assert not keys_match("", "acme-solar-us-2024")
    # compare_digest refuses non-ASCII str; a presented key may be anything.
    assert not keys_match("clé-énorme", "acme-solar-us-2024")


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert keys_match("k1-0123456789abcdef", "k1-0123456789abcdef")
    assert calls == [(b"k1-0123456789abcdef", b"k1-0123456789abcdef")]


# --- errors -------------------------------------------------------------------------------


def test_intake_errors() -> None:
    required = SourceKeyRequired()
    assert isinstance(required, InvalidSourceKey)
    assert (required.code, dict(required.details)) == ("invalid_source_key", {"reason": "required"})
    refused = ClientNotAllowed()
    assert (refused.code, dict(refused.details)) == ("client_not_allowed", {})
    assert refused.code.status == 403


# --- admission ----------------------------------------------------------------------------

NETWORKS = parse_networks(["203.0.113.0/24", "2001:db8::/32"])
INSIDE, OUTSIDE = ip_address("203.0.113.9"), ip_address("198.51.100.9")


def test_a_source_without_rules_admits_every_lead() -> None:
    for key_presented in (True, False):
        for client in (INSIDE, OUTSIDE, None):
            admit_lead(
                require_key=False, key_presented=key_presented, allowed_networks=(), client=client
            )


def test_a_required_key_must_be_presented() -> None:
    admit_lead(require_key=True, key_presented=True, allowed_networks=(), client=None)
    with pytest.raises(SourceKeyRequired) as caught:
        admit_lead(require_key=True, key_presented=False, allowed_networks=(), client=INSIDE)
    assert caught.value.details == {"reason": "required"}


@pytest.mark.parametrize(
    ("client", "admitted"),
    [(INSIDE, True), (ip_address("2001:db8::1"), True), (OUTSIDE, False), (None, False)],
)
def test_allowed_networks_admit_only_their_clients(
    client: IPv4Address | IPv6Address | None, admitted: bool
) -> None:
    if admitted:
        admit_lead(require_key=False, key_presented=False, allowed_networks=NETWORKS, client=client)
        return
    with pytest.raises(ClientNotAllowed) as caught:
        admit_lead(require_key=False, key_presented=False, allowed_networks=NETWORKS, client=client)
    assert caught.value.details == {}


def test_a_missing_key_is_reported_before_the_network() -> None:
    with pytest.raises(SourceKeyRequired):
        admit_lead(require_key=True, key_presented=False, allowed_networks=NETWORKS, client=OUTSIDE)
