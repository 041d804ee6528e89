"""Classification rules: which source a posted lead belongs to (SPEC §5).

Canonical forms of source ids, source keys, hostnames and paths, and the tie-breaking rule
among HTTP mappings. Catalog writes and request handling use the same functions, so a stored
value and a request value compare equal exactly when they name the same thing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import idna

from domain.errors import (
    AmbiguousSourceMapping,
    InvalidRequest,
    InvalidSource,
    InvalidSourceKey,
    UnmappedSource,
)

SOURCE_KEY_PATTERN: str = r"^[a-z0-9][a-z0-9._~-]{0,127}$"
MAX_SOURCE_ID = 2**63 - 1

_SOURCE_KEY_RE = re.compile(SOURCE_KEY_PATTERN)
_ASCII_HOSTNAME_RE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_IPV6_LITERAL_RE = re.compile(r"^\[[0-9a-f:.]+\]$")
# Longest decimal form of a bigint; checked before int() so a huge string costs nothing.
_MAX_SOURCE_ID_DIGITS = len(str(MAX_SOURCE_ID))
# Longest posted source_id string, leading zeros included. Checked before anything else:
# stripping or converting an attacker-sized string is work the service need not do.
MAX_SOURCE_ID_LENGTH = 100
MAX_PORT = 65535
# C0 controls and DEL: PostgreSQL cannot store U+0000, and the others forge log lines.
_CONTROL_CHARACTERS_RE = re.compile("[\x00-\x1f\x7f]")


def is_absent(value: object) -> bool:
    """A selector or field that is null or blank counts as not given (SPEC §5)."""
    return value is None or (isinstance(value, str) and not value.strip())


def parse_source_id(value: object) -> int | None:
    """The posted `source_id` as a bigint, None when absent; anything else is malformed."""
    if is_absent(value):
        return None
    # bool is an int subclass: `true` must not select source 1.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and len(value) <= MAX_SOURCE_ID_LENGTH:
        digits = value.strip()
        significant = digits.lstrip("0")
        # isdigit() alone accepts Arabic-Indic or full-width digits; only ASCII is a source id.
        if not (digits.isascii() and digits.isdigit()) or len(significant) > _MAX_SOURCE_ID_DIGITS:
            raise InvalidSource(reason="malformed")
        number = int(significant or "0")
    else:
        raise InvalidSource(reason="malformed")
    if not 1 <= number <= MAX_SOURCE_ID:
        raise InvalidSource(reason="malformed")
    return number


def canonical_source_key(value: str) -> str:
    """NFKC, trimmed, lower-cased source key; the error never echoes the key (it is a secret)."""
    if not isinstance(value, str):
        raise InvalidSourceKey(reason="malformed")
    key = unicodedata.normalize("NFKC", value).strip().lower()
    if not _SOURCE_KEY_RE.fullmatch(key):
        raise InvalidSourceKey(reason="malformed")
    return key


def _split_port(host: str) -> tuple[str, str | None]:
    """The host and its port (None without one). The host is empty when what follows it is not
    `:port`, or when a second colon makes it an unbracketed IPv6 address, which a Host header
    cannot carry."""
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        if end < 0 or (rest and rest[0] != ":"):
            return "", None
        return host[: end + 1], rest[1:] if rest else None
    if ":" not in host:
        return host, None
    name, _, port = host.partition(":")
    return ("", None) if ":" in port else (name, port)


def _is_port(port: str) -> bool:
    """An empty port (RFC 3986 allows `host:`) or a decimal number up to 65535."""
    if port == "":
        return True
    if not (port.isascii() and port.isdigit()):
        return False
    # Length first: int() of a header-sized digit string is work for nothing.
    significant = port.lstrip("0")
    return len(significant) <= len(str(MAX_PORT)) and int(significant or "0") <= MAX_PORT


def check_host(values: Sequence[str]) -> None:
    """Refuses a request whose Host header is repeated or names an impossible port.

    RFC 9112 §3.2: a request with more than one Host field line is answered 400, whichever
    line the mapping would have used.
    """
    if len(values) > 1:
        raise InvalidRequest(
            "The request has more than one Host header; send exactly one.",
            reason="duplicate_host",
            field="host",
        )
    if not values:
        return
    _, port = _split_port(values[0].strip())
    if port is not None and not _is_port(port):
        raise InvalidRequest(
            "The Host header's port is not a number from 0 to 65535.",
            reason="invalid_port",
            field="host",
        )


def canonical_hostname(host: str) -> str | None:
    """The canonical form of a Host header (SPEC §5.3); None when empty or unconvertible."""
    name, port = _split_port(host.strip().lower())
    if port is not None and not _is_port(port):
        return None
    name = name.removesuffix(".")
    if not name:
        return None
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii").lower()
        except (idna.IDNAError, UnicodeError):
            return None
    if _IPV6_LITERAL_RE.fullmatch(name) or _ASCII_HOSTNAME_RE.fullmatch(name):
        return name
    # Also reached when IDNA output is not a plain hostname (e.g. it kept a trailing dot),
    # so that every non-None result is a fixed point.
    return None


def check_request_path(path: str, raw_path: str | None = None) -> None:
    """Refuses a request path that cannot be stored as is or mapped unambiguously.

    `path` is the percent-decoded path, `raw_path` the path as sent (when known). Control
    characters (`%00`, `%0A`, …) cannot be stored or logged faithfully. Dot segments
    (`/api/leads/acme/../other`) and encoded slashes (`acme%2F..%2Fother`) would let a
    posting URL name another source's prefix; a posting URL is a selector, so it is taken
    only as written. Clients normalize dot segments themselves before sending.
    """
    if _CONTROL_CHARACTERS_RE.search(path):
        raise InvalidRequest(
            "The request path contains control characters.",
            reason="control_characters",
            field="path",
        )
    if raw_path is not None and "%2f" in raw_path.lower():
        raise InvalidRequest(
            "The request path contains an encoded slash (%2F).",
            reason="encoded_slash",
            field="path",
        )
    if any(segment in (".", "..") for segment in path.split("/")):
        raise InvalidRequest(
            "The request path contains `.` or `..` segments; post to the URL as written.",
            reason="dot_segments",
            field="path",
        )


def canonical_path(path: str, root_path: str = "") -> str:
    """The canonical request path (SPEC §5.3): absolute, no empty/dot segments, no trailing /."""
    segments: list[str] = []
    # Splitting on "/" and skipping empty segments collapses repeated slashes and drops the
    # trailing slash; "." and ".." are then the dot-segment removal of RFC 3986 §5.2.4.
    for segment in (root_path + path).split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return "/" + "/".join(segments)


def canonical_path_prefix(prefix: str) -> str:
    """A mapping's path prefix in the same canonical form as request paths; empty means `/`."""
    return canonical_path(prefix)


def prefix_matches(path_prefix: str, path: str) -> bool:
    """Whether a canonical prefix covers a canonical path, on a segment boundary only."""
    return path_prefix == "/" or path == path_prefix or path.startswith(path_prefix + "/")


@dataclass(frozen=True, slots=True)
class MappingCandidate:
    """An active HTTP mapping for the request's hostname: the source it names and its prefix."""

    source_id: int
    path_prefix: str


def select_mapping(candidates: Iterable[MappingCandidate], path: str) -> int:
    """The source of the longest matching prefix; unmapped if none, ambiguous if it is shared."""
    canonical = canonical_path(path)
    best_length = -1
    best_sources: set[int] = set()
    for candidate in candidates:
        prefix = canonical_path_prefix(candidate.path_prefix)
        if not prefix_matches(prefix, canonical):
            continue
        if len(prefix) > best_length:
            best_length = len(prefix)
            best_sources = {candidate.source_id}
        elif len(prefix) == best_length:
            best_sources.add(candidate.source_id)
    if not best_sources:
        raise UnmappedSource()
    if len(best_sources) > 1:
        raise AmbiguousSourceMapping(source_ids=sorted(best_sources))
    return next(iter(best_sources))
