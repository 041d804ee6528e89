"""Classification rules: source ids, source keys, hostnames, paths and mapping tie-breaks."""

from __future__ import annotations

import re

import pytest

from domain.classification import (
    SOURCE_KEY_PATTERN,
    MappingCandidate,
    canonical_hostname,
    canonical_path,
    canonical_path_prefix,
    canonical_source_key,
    is_absent,
    parse_source_id,
    prefix_matches,
    select_mapping,
)
from domain.errors import AmbiguousSourceMapping, InvalidSource, InvalidSourceKey, UnmappedSource


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, True),
        ("", True),
        ("   ", True),
        ("\t\n", True),
        ("\u00a0", True),
        ("\u3000", True),
        ("x", False),
        (" x ", False),
        (0, False),
        (False, False),
        ([], False),
        ({}, False),
    ],
)
def test_is_absent(value: object, expected: bool) -> None:
    assert is_absent(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        (1, 1),
        (7, 7),
        (2**63 - 1, 2**63 - 1),
        ("7", 7),
        (" 12 ", 12),
        ("\t42\n", 42),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("0" * 40 + "5", 5),
    ],
)
def test_parse_source_id_accepts(value: object, expected: int | None) -> None:
    assert parse_source_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        0,
        -1,
        2**63,
        10**30,
        "0",
        "000",
        "-1",
        "+1",
        "1.0",
        "1e3",
        "12a",
        "1 2",
        "0x10",
        "9223372036854775808",
        "9" * 5000,
        "1" * 20,  # more digits than a bigint has, though short enough to be read
        "\u0663",  # ARABIC-INDIC DIGIT THREE
        "\uff11\uff12",  # FULL-WIDTH 12
        "\u00b2",  # SUPERSCRIPT TWO: isdigit() is True for it
        1.0,
        7.5,
        float("nan"),
        [],
        {"id": 1},
    ],
)
def test_parse_source_id_rejects_malformed(value: object) -> None:
    with pytest.raises(InvalidSource) as raised:
        parse_source_id(value)
    assert raised.value.details == {"reason": "malformed"}
    assert raised.value.code == "invalid_source"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("ABC", "abc"),
        ("  acme-1  ", "acme-1"),
        ("\tacme\t", "acme"),
        ("\nacme\r\n", "acme"),
        ("\u00a0acme\u00a0", "acme"),  # NO-BREAK SPACE
        ("\u3000acme\u3000", "acme"),  # IDEOGRAPHIC SPACE
        ("\u2003acme", "acme"),  # EM SPACE
        ("\uff21\uff23\uff2d\uff25", "acme"),  # FULL-WIDTH ACME
        ("\uff41\uff43\uff4d\uff45\uff0d\uff11", "acme-1"),  # full-width hyphen-minus too
        ("a.b_c~d-e", "a.b_c~d-e"),
        ("0", "0"),
        ("9lives", "9lives"),
        ("\ufb01sh", "fish"),  # LATIN SMALL LIGATURE FI
        ("\u2460x", "1x"),  # CIRCLED DIGIT ONE
        ("K" * 128, "k" * 128),
    ],
)
def test_canonical_source_key(value: str, expected: str) -> None:
    assert canonical_source_key(value) == expected
    assert re.fullmatch(SOURCE_KEY_PATTERN, expected)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "\u00a0",
        "-acme",
        ".acme",
        "_acme",
        "~acme",
        "ac me",
        "ac\u00a0me",
        "acme/1",
        "acme@x",
        "ümlaut",
        "straße",
        "k" * 129,
        "acme\x00",
        "ac\tme",
        "\u0130stanbul",  # lower() gives a combining dot
    ],
)
def test_canonical_source_key_rejects(value: str) -> None:
    with pytest.raises(InvalidSourceKey) as raised:
        canonical_source_key(value)
    assert raised.value.details == {"reason": "malformed"}
    # The key is a credential: it must appear neither in the message nor in the details.
    if value.strip():
        assert value.strip() not in raised.value.message


@pytest.mark.parametrize("value", [None, 123, 1.5, True, ["acme"]])
def test_canonical_source_key_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidSourceKey):
        canonical_source_key(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "example.com"),
        ("EXAMPLE.COM", "example.com"),
        ("  example.com  ", "example.com"),
        ("example.com:8000", "example.com"),
        ("example.com:", "example.com"),
        ("example.com.", "example.com"),
        ("example.com.:8000", "example.com"),
        ("localhost", "localhost"),
        ("localhost:8000", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("[::1]:8000", "[::1]"),
        ("[::1]:", "[::1]"),
        ("[2001:DB8::1]:443", "[2001:db8::1]"),
        ("[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]"),
        ("my_host.example", "my_host.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("bücher.example.", "xn--bcher-kva.example"),
        ("bücher.example:8443", "xn--bcher-kva.example"),
        ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "example.com"),
        # A full-width full stop is a label separator too.
        ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0ecom", "example.com"),
        ("\u212a.example", "k.example"),  # KELVIN SIGN lower-cases to ASCII k
        ("münchen.de", "xn--mnchen-3ya.de"),
    ],
)
def test_canonical_hostname(host: str, expected: str) -> None:
    assert canonical_hostname(host) == expected
    assert canonical_hostname(expected) == expected


@pytest.mark.parametrize(
    "host",
    [
        "",
        "   ",
        ".",
        ":8000",
        "example.com..",
        "a..b",
        ".example.com",
        "exa mple.com",
        "example.com:80a",
        "example.com:\uff18\uff10",
        "example.com:80:80",
        "::1",
        "[::1",
        "[::1]x",
        "[::1]:80x",
        "[fe80::1%25eth0]",
        "[]",
        "[example.com]",
        "user@example.com",
        "example.com/path",
        "💩.example",
        "-bücher.example",
        "my_host.bücher.example",  # IDNA rejects the underscore once conversion is needed
        "bücher.example..",
        "ex\u00a0ample.com",
    ],
)
def test_canonical_hostname_rejects(host: str) -> None:
    assert canonical_hostname(host) is None


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("", "", "/"),
        ("/", "", "/"),
        ("//", "", "/"),
        ("/api/leads", "", "/api/leads"),
        ("/api/leads/", "", "/api/leads"),
        ("api/leads", "", "/api/leads"),
        ("/api//leads", "", "/api/leads"),
        ("//api///leads//", "", "/api/leads"),
        ("/api/./leads", "", "/api/leads"),
        ("/./api/leads/.", "", "/api/leads"),
        ("/api/x/../leads", "", "/api/leads"),
        ("/api/leads/acme/..", "", "/api/leads"),
        ("/..", "", "/"),
        ("/../..", "", "/"),
        ("/../api", "", "/api"),
        ("/a/b/../../../c", "", "/c"),
        ("/a/.../b", "", "/a/.../b"),
        ("/a/..b/.c", "", "/a/..b/.c"),
        ("/API/Leads", "", "/API/Leads"),
        ("/leads", "/api", "/api/leads"),
        ("/leads", "/api/", "/api/leads"),
        ("/", "/api", "/api"),
        ("", "/api", "/api"),
        ("/../x", "/api", "/x"),
        ("/ü/ñ", "", "/ü/ñ"),
        ("/a b/c", "", "/a b/c"),
    ],
)
def test_canonical_path(path: str, root_path: str, expected: str) -> None:
    assert canonical_path(path, root_path) == expected
    assert canonical_path(expected) == expected


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("api", "/api"),
        ("/api/leads/", "/api/leads"),
        ("/api//leads/./acme/../x", "/api/leads/x"),
    ],
)
def test_canonical_path_prefix(prefix: str, expected: str) -> None:
    assert canonical_path_prefix(prefix) == expected


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("/", "/", True),
        ("/", "/anything/at/all", True),
        ("/a", "/a", True),
        ("/a", "/a/b", True),
        ("/a", "/a/b/c", True),
        ("/a", "/ab", False),
        ("/a", "/", False),
        ("/a/b", "/a", False),
        ("/a/b", "/a/bc", False),
        ("/a/b", "/a/b/c", True),
        ("/A", "/a", False),
    ],
)
def test_prefix_matches(prefix: str, path: str, expected: bool) -> None:
    assert prefix_matches(prefix, path) is expected


def _candidates(*pairs: tuple[int, str]) -> list[MappingCandidate]:
    return [MappingCandidate(source_id=s, path_prefix=p) for s, p in pairs]


@pytest.mark.parametrize(
    ("candidates", "path", "expected"),
    [
        (_candidates((1, "/")), "/api/leads", 1),
        (_candidates((1, "/"), (2, "/api/leads/acme")), "/api/leads/acme", 2),
        (_candidates((1, "/"), (2, "/api/leads/acme")), "/api/leads/acme/x", 2),
        (_candidates((1, "/"), (2, "/api/leads/acme")), "/api/leads/acmex", 1),
        (_candidates((1, "/a"), (2, "/ab")), "/ab", 2),
        (_candidates((1, "/a"), (2, "/ab")), "/a/b", 1),
        (_candidates((1, "/a"), (2, "/a/b"), (3, "/a/b/c")), "/a/b/c/d", 3),
        (_candidates((1, "/a"), (2, "/a/b"), (3, "/a/b/c")), "/a/b/x", 2),
        (_candidates((1, "/a"), (1, "/a")), "/a", 1),  # same source twice: not ambiguous
        (_candidates((1, "/"), (2, "/"), (3, "/a")), "/a/b", 3),  # tie only on a shorter one
        (_candidates((1, "/a/")), "/a//b/", 1),  # both sides canonicalized
        (_candidates((5, "/a/b/..")), "/a/./z", 5),
    ],
)
def test_select_mapping(candidates: list[MappingCandidate], path: str, expected: int) -> None:
    assert select_mapping(candidates, path) == expected


@pytest.mark.parametrize(
    ("candidates", "path"),
    [
        ([], "/"),
        (_candidates((1, "/a")), "/"),
        (_candidates((1, "/a")), "/ab"),
        (_candidates((1, "/a/b")), "/a"),
        (_candidates((1, "/A")), "/a"),
    ],
)
def test_select_mapping_unmapped(candidates: list[MappingCandidate], path: str) -> None:
    with pytest.raises(UnmappedSource):
        select_mapping(candidates, path)


@pytest.mark.parametrize(
    ("candidates", "path", "source_ids"),
    [
        (_candidates((2, "/"), (1, "/")), "/x", [1, 2]),
        (_candidates((9, "/a"), (3, "/a"), (1, "/")), "/a/b", [3, 9]),
        (_candidates((30, "/a/b"), (10, "/a/b"), (20, "/a/b"), (10, "/a/b")), "/a/b", [10, 20, 30]),
        (_candidates((2, "/a/"), (1, "/a")), "/a", [1, 2]),  # equal once canonical
    ],
)
def test_select_mapping_ambiguous(
    candidates: list[MappingCandidate], path: str, source_ids: list[int]
) -> None:
    with pytest.raises(AmbiguousSourceMapping) as raised:
        select_mapping(candidates, path)
    assert raised.value.details == {"source_ids": source_ids}
    assert raised.value.code == "ambiguous_source_mapping"


def test_select_mapping_accepts_a_generator() -> None:
    assert select_mapping((c for c in _candidates((4, "/a"))), "/a") == 4
