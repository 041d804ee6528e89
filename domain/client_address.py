"""Who posted a lead: the client address behind trusted proxies, and per-source network rules.

The client address is the TCP peer, unless the peer is a trusted proxy: then it is the
right-most `X-Forwarded-For` entry that is not itself a trusted proxy (each proxy appends
the address it received the request from, so entries left of the first untrusted one may
be forged by the client). A header that cannot be read is treated as absent: the answer
falls back to the peer, and nothing here raises on request input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# IPv6 addresses that carry an IPv4 address (`::ffff:203.0.113.7`, as dual-stack sockets
# report IPv4 peers): compared as the IPv4 address they carry.
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")


class NetworkError(ValueError):
    """A network (CIDR) that a catalog entry or a setting cannot use; the text says why."""


def parse_network(text: str) -> Network:
    """A CIDR such as `203.0.113.0/24` or `2001:db8::/32`; a bare address is a /32 or /128.

    Host bits set outside the mask are refused rather than silently masked: `10.1.2.3/8`
    is more likely a typo than a wish to allow all of 10.0.0.0/8.
    """
    candidate = text.strip()
    if "%" in candidate:
        raise NetworkError(f'"{candidate}" is not a network: zone indexes are not allowed')
    try:
        network = ip_network(candidate)
    except ValueError:
        try:
            masked = ip_network(candidate, strict=False)
        except ValueError:
            raise NetworkError(
                f'"{candidate}" is not a network such as 203.0.113.0/24 or 2001:db8::/32'
            ) from None
        raise NetworkError(
            f'"{candidate}" has bits set after the /{masked.prefixlen} mask: write {masked}'
        ) from None
    if isinstance(network, IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        raise NetworkError(
            f'"{candidate}" is an IPv4-mapped IPv6 network: write the IPv4 network instead'
        )
    return network


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(parse_network(text) for text in texts)


def canonical_network(text: str) -> str:
    """The one text form of a network, so stored and declared networks compare equal."""
    return str(parse_network(text))


def _plain(address: Address) -> Address:
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return IPv6Address(int(address))
    return address


def parse_address(text: str) -> Address | None:
    """An IP address as a peer or an `X-Forwarded-For` entry writes it; None if it is not one.

    Accepts `203.0.113.7`, `2001:db8::7`, and the forms with a port some proxies write:
    `203.0.113.7:4711`, `[2001:db8::7]`, `[2001:db8::7]:4711`.
    """
    candidate = text.strip()
    if candidate.startswith("["):
        end = candidate.find("]")
        rest = candidate[end + 1 :]
        if end < 0 or (rest and not (rest[0] == ":" and _is_port(rest[1:]))):
            return None
        candidate = candidate[1:end]
        if ":" not in candidate:
            return None  # brackets hold IPv6 only
    elif candidate.count(":") == 1:
        candidate, _, port = candidate.partition(":")
        if not _is_port(port):
            return None
    try:
        return _plain(ip_address(candidate))
    except ValueError:
        return None


def _is_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


def _within(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> Address | None:
    """The client's address (see the module docstring); None when the peer is not an IP.

    `forwarded_for` holds every `X-Forwarded-For` header value of the request, in order.
    """
    peer_address = parse_address(peer) if peer is not None else None
    if peer_address is None or not _within(peer_address, trusted):
        return peer_address
    entries = [entry for value in forwarded_for for entry in value.split(",")]
    if not any(entry.strip() for entry in entries):
        return peer_address
    chain: list[Address] = []
    for entry in entries:
        address = parse_address(entry)
        if address is None:
            return peer_address
        chain.append(address)
    for address in reversed(chain):
        if not _within(address, trusted):
            return address
    # Every hop is a trusted proxy: the left-most is the farthest one known.
    return chain[0]


def network_allows(networks: Sequence[Network], address: Address | None) -> bool:
    """Whether a source with these allowed networks takes a lead from `address`.

    No networks means any address, including an unknown one; with networks, an unknown
    address is refused.
    """
    return not networks or (address is not None and _within(address, networks))
