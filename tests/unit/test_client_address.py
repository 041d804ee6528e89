"""The client address behind trusted proxies, network parsing and per-source network rules."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.client_address import (
    NetworkError,
    canonical_network,
    client_address,
    network_allows,
    parse_address,
    parse_network,
    parse_networks,
)
from infrastructure.settings import Settings, SettingsError

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])
CLIENT = "203.0.113.7"


# --- networks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("203.0.113.0/24", "203.0.113.0/24"),
        (" 203.0.113.0/24 ", "203.0.113.0/24"),
        ("203.0.113.7", "203.0.113.7/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:DB8:0:0::/32", "2001:db8::/32"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("::/0", "::/0"),
    ],
)
def test_networks_are_normalized(text: str, canonical: str) -> None:
    assert canonical_network(text) == canonical
    assert canonical_network(canonical) == canonical


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is not a network"),
        ("leads.example.com", "is not a network"),
        ("203.0.113.0/33", "is not a network"),
        ("203.0.113", "is not a network"),
        ("010.0.0.0/8", "is not a network"),
        ("203.0.113.7/24", "write 203.0.113.0/24"),
        ("2001:db8::1/32", "write 2001:db8::/32"),
        ("::ffff:203.0.113.0/120", "IPv4-mapped"),
        ("fe80::1%eth0", "zone"),
    ],
)
def test_bad_networks_say_why(text: str, words: str) -> None:
    with pytest.raises(NetworkError) as caught:
        parse_network(text)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


# --- addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:4711", "203.0.113.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_addresses_as_peers_and_proxies_write_them(text: str, address: str) -> None:
    assert parse_address(text) == ip_address(address)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unknown",
        "testclient",
        "203.0.113.7:",
        "203.0.113.7:http",
        "203.0.113.7:123456",
        "[203.0.113.7]",
        "[2001:db8::7",
        "[2001:db8::7]x",
        "2001:db8::7:443:x",
        "203.0.113.7/32",
    ],
)
def test_what_is_not_an_address(text: str) -> None:
    assert parse_address(text) is None


# --- the client address -------------------------------------------------------------------


def test_an_untrusted_peer_is_the_client_and_its_forwarded_for_is_ignored() -> None:
    # A client cannot choose its address by sending the header itself.
    assert client_address(CLIENT, ["198.51.100.1"], PROXIES) == ip_address(CLIENT)
    assert client_address(CLIENT, ["198.51.100.1"], ()) == ip_address(CLIENT)


def test_no_proxy_between_client_and_service() -> None:
    assert client_address(CLIENT, [], PROXIES) == ip_address(CLIENT)


def test_one_trusted_proxy() -> None:
    assert client_address("10.0.0.2", [CLIENT], PROXIES) == ip_address(CLIENT)


def test_two_trusted_proxies() -> None:
    assert client_address("10.0.0.2", [f"{CLIENT}, 10.0.0.1"], PROXIES) == ip_address(CLIENT)


def test_entries_left_of_the_first_untrusted_one_are_not_believed() -> None:
    # The client sent `X-Forwarded-For: 198.51.100.1`; the proxy appended the real address.
    forwarded = ["198.51.100.1", f"{CLIENT}, 10.0.0.1"]
    assert client_address("10.0.0.2", forwarded, PROXIES) == ip_address(CLIENT)


def test_ipv6_proxies_and_clients() -> None:
    chain = ["2001:db8:1::7, [2001:db8:ffff::1]:443"]
    assert client_address("2001:db8:ffff::2", chain, PROXIES) == ip_address("2001:db8:1::7")
    assert client_address("::ffff:10.0.0.2", [CLIENT], PROXIES) == ip_address(CLIENT)


def test_a_chain_of_trusted_proxies_only_gives_the_farthest() -> None:
    assert client_address("10.0.0.3", ["10.0.0.1, 10.0.0.2"], PROXIES) == ip_address("10.0.0.1")


@pytest.mark.parametrize(
    "forwarded",
    [
        ["not-an-address"],
        [f"{CLIENT}, unknown"],
        [f"{CLIENT},,10.0.0.1"],
        [CLIENT, "garbage"],
        [f"{CLIENT};10.0.0.1"],
    ],
)
def test_a_malformed_header_counts_as_absent(forwarded: list[str]) -> None:
    assert client_address("10.0.0.2", forwarded, PROXIES) == ip_address("10.0.0.2")


@pytest.mark.parametrize("forwarded", [[], [""], ["  ", ""], [" , "]])
def test_an_empty_header_counts_as_absent(forwarded: list[str]) -> None:
    assert client_address("10.0.0.2", forwarded, PROXIES) == ip_address("10.0.0.2")


@pytest.mark.parametrize("peer", [None, "", "testclient", "/run/leads.sock"])
def test_a_peer_without_an_ip_address_is_unknown(peer: str | None) -> None:
    assert client_address(peer, [CLIENT], PROXIES) is None


@given(
    peer=st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["10.0.0.2", "::1"])),
    forwarded=st.lists(st.text(max_size=60), max_size=4),
)
def test_never_raises_and_answers_an_address_or_none(
    peer: str | None, forwarded: list[str]
) -> None:
    trusted = (*PROXIES, *parse_networks(["::1"]))
    answer = client_address(peer, forwarded, trusted)
    assert answer is None or isinstance(answer, IPv4Address | IPv6Address)
    peer_address = parse_address(peer) if peer is not None else None
    if peer_address is None or not any(peer_address in n for n in trusted):
        assert answer == peer_address
    else:
        # Whatever the header says, the answer is the peer or one of the header's entries.
        entries = [parse_address(e) for v in forwarded for e in v.split(",")]
        assert answer == peer_address or answer in entries


# --- allowed networks ---------------------------------------------------------------------


def test_no_networks_allow_any_address_even_an_unknown_one() -> None:
    assert network_allows((), ip_address(CLIENT))
    assert network_allows((), None)


def test_networks_allow_only_their_addresses() -> None:
    networks = parse_networks(["203.0.113.0/24", "2001:db8:1::/48"])
    assert network_allows(networks, ip_address("203.0.113.255"))
    assert network_allows(networks, ip_address("2001:db8:1::7"))
    assert not network_allows(networks, ip_address("203.0.114.1"))
    assert not network_allows(networks, ip_address("2001:db8:2::7"))
    assert not network_allows(networks, None)


def test_an_ipv4_address_is_not_inside_an_ipv6_network() -> None:
    assert not network_allows((ip_network("::/0"),), ip_address(CLIENT))


# --- the setting --------------------------------------------------------------------------


def test_trusted_proxies_setting() -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    settings = Settings.from_env({"LEADS_TRUSTED_PROXIES": " 10.0.0.0/8, ,2001:db8::1 "})
    assert settings.trusted_proxies == (ip_network("10.0.0.0/8"), ip_network("2001:db8::1/128"))


@pytest.mark.parametrize("value", ["10.0.0.0/8,proxy.internal", "10.0.0.1/8"])
def test_a_bad_trusted_proxies_setting_is_one_line(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"LEADS_TRUSTED_PROXIES": value})
    message = str(caught.value)
    assert message.startswith("LEADS_TRUSTED_PROXIES must be comma-separated networks")
    assert "\n" not in message
