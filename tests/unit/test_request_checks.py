"""Request paths, Host headers and source ids that are refused before classification."""

from __future__ import annotations

import pytest

from domain.classification import (
    MAX_SOURCE_ID_LENGTH,
    canonical_hostname,
    check_host,
    check_request_path,
    parse_source_id,
)
from domain.errors import InvalidRequest, InvalidSource

HUGE_DIGITS = "0" * 5000 + "1"


@pytest.mark.parametrize(
    "path",
    [
        "/api/leads",
        "/api/leads/acme",
        "/api/leads/acme/",
        "/api/leads//acme",
        "/api/leads/a.b/..c/...",
        "/api/leads/bücher",
        "/api/leads/with space",
    ],
)
def test_ordinary_paths_pass(path: str) -> None:
    check_request_path(path, path)


@pytest.mark.parametrize("character", [*(chr(c) for c in range(0x20)), "\x7f"])
def test_control_characters_in_the_path_are_refused(character: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_request_path(f"/api/leads/a{character}b")
    assert refused.value.details == {"reason": "control_characters", "field": "path"}


@pytest.mark.parametrize(
    "path",
    ["/api/leads/acme/../brightpath", "/api/leads/./acme", "/api/leads/acme/..", "/../api/leads"],
)
def test_dot_segments_are_refused(path: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_request_path(path, path)
    assert refused.value.details == {"reason": "dot_segments", "field": "path"}


@pytest.mark.parametrize("raw", ["/api/leads/acme%2Fx", "/api/leads/acme%2f..%2fx"])
def test_an_encoded_slash_is_refused(raw: str) -> None:
    decoded = raw.replace("%2F", "/").replace("%2f", "/")
    with pytest.raises(InvalidRequest) as refused:
        check_request_path(decoded, raw)
    assert refused.value.details == {"reason": "encoded_slash", "field": "path"}


@pytest.mark.parametrize(
    "hosts",
    [
        [],
        ["leads.example.com"],
        ["leads.example.com:8000"],
        ["leads.example.com:"],
        ["leads.example.com:065535"],
        ["[::1]:8000"],
        ["[::1]"],
        ["::1"],  # not a port problem: unmapped, as before
    ],
)
def test_one_host_with_a_possible_port_passes(hosts: list[str]) -> None:
    check_host(hosts)


def test_duplicate_host_headers_are_refused() -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_host(["a.example.com", "b.example.com"])
    assert refused.value.details == {"reason": "duplicate_host", "field": "host"}


@pytest.mark.parametrize(
    "host",
    [
        "leads.example.com:65536",
        "leads.example.com:99999",
        "leads.example.com:8o",
        "leads.example.com:-1",
        "leads.example.com:+80",
        "leads.example.com:\uff18\uff10",  # full-width digits
        "[::1]:99999",
        "[::1]:x",
        "leads.example.com:" + "9" * 5000,
    ],
)
def test_impossible_ports_are_refused(host: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_host([host])
    assert refused.value.details == {"reason": "invalid_port", "field": "host"}
    assert canonical_hostname(host) is None


@pytest.mark.parametrize(
    "value",
    [
        HUGE_DIGITS,
        "1" + "0" * 5000,
        " " * 5000 + "1",
        "0" * MAX_SOURCE_ID_LENGTH + "1",
    ],
    ids=["zeros-then-one", "one-then-zeros", "padded", "just-over-the-length"],
)
def test_overlong_source_id_strings_are_malformed(value: str) -> None:
    with pytest.raises(InvalidSource) as refused:
        parse_source_id(value)
    assert refused.value.details == {"reason": "malformed"}


def test_leading_zeros_up_to_the_length_limit_are_accepted() -> None:
    assert parse_source_id("0" * (MAX_SOURCE_ID_LENGTH - 1) + "7") == 7
