"""Rules of publisher intake once the source is known: may this request post a lead for it?

Also the stored User-Agent and the comparison of a presented source key. A lead is never
refused for its User-Agent: whatever was sent is cut to a bounded length and made storable.
Source keys are secrets, so a presented key is compared in constant time with the one it
must equal.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence

from domain.client_address import Address, Network, network_allows
from domain.errors import ClientNotAllowed, SourceKeyRequired

MAX_USER_AGENT_CHARS = 1024
# C0 controls (NUL included) cannot be shown or logged safely; lone surrogates cannot be
# stored as PostgreSQL text. Both become U+FFFD, one character for one.
_UNSTORABLE = re.compile("[\x00-\x1f\ud800-\udfff]")


def sanitize_user_agent(value: str | None) -> str | None:
    """The `User-Agent` header to store: at most 1,024 characters, C0 controls as U+FFFD."""
    if value is None:
        return None
    return _UNSTORABLE.sub("\ufffd", value[:MAX_USER_AGENT_CHARS])


def keys_match(presented: str, expected: str) -> bool:
    """Whether a presented (canonical) source key is the expected one, in constant time.

    Compared as UTF-8 bytes: `hmac.compare_digest` refuses non-ASCII `str`, and a presented
    key is whatever the client sent.
    """
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def admit_lead(
    *,
    require_key: bool,
    key_presented: bool,
    allowed_networks: Sequence[Network],
    client: Address | None,
) -> None:
    """Refuse a classified lead its source does not take; runs before anything is written.

    `key_presented`: the request carried a `source_key`. Classification has already made
    sure a presented key is this source's (it selected the source, or had to match the
    source named by `source_id`), so only its absence is left to check here. The key is
    checked first: a request without it is malformed whatever its address.
    """
    if require_key and not key_presented:
        raise SourceKeyRequired()
    if not network_allows(allowed_networks, client):
        raise ClientNotAllowed()
