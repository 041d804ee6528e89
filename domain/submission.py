"""The posted fields of a lead turned into typed values (SPEC §6), before classification.

Names, types and limits come from the field table in domain/fields.py. Selectors (`source_id`,
`source_key`, `idempotency_key`) pass through raw: their errors carry their own codes. Each
value is typed once: the names posted as ours before classification (their errors come first),
the names a source's aliases rename once the source is known (`Submission.with_aliases`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from domain.aliases import apply_aliases
from domain.errors import InvalidRequest
from domain.fields import (
    CONSENT_FIELDS,
    CONTACT_FIELDS,
    KNOWN_NAMES,
    MAX_ATTRIBUTES,
    POSTED_FIELDS,
    fold_field_name,
    same_value,
)

MAX_DEPTH = 32

# Derived from the field table (domain/fields.py), never restated here; every contact and
# consent field has a limit (tests/unit/test_fields.py).
_MAX_LENGTHS: Mapping[str, int] = {
    f.name: f.limit
    for f in POSTED_FIELDS
    if f.role in ("contact", "consent") and f.limit is not None
}
_INTEGER_CONTACT_FIELDS = frozenset(
    f.name for f in POSTED_FIELDS if f.role == "contact" and f.type == "text_or_integer"
)
_CONSENT = frozenset(CONSENT_FIELDS)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0", ""})


@dataclass(frozen=True, slots=True)
class Submission:
    """One posted lead: raw selectors, typed contact fields, the test flag, other fields, and
    the consent fields: typed, and as posted (under the names posted), which is how they enter
    the derived key, as any other field outside the contact does."""

    source_id: object
    source_key: object
    idempotency_key: object
    contact: Mapping[str, str | None]
    is_test: bool
    attributes: Mapping[str, object]
    consent: Mapping[str, str | None] = field(default_factory=dict)
    consent_posted: Mapping[str, object] = field(default_factory=dict)
    # As posted: aliases are applied in posted order (the first disagreement is the error).
    posted: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    def with_aliases(self, aliases: Mapping[str, str]) -> Submission:
        """The fields as the source names them: each other field one of its `aliases` (folded
        name → target) names becomes that target, typed now by the same rules. An alias and
        its target with different values are `conflicting_values` (domain/aliases.py)."""
        moved = {n: t for n in self.attributes if (t := aliases.get(fold_field_name(n)))}
        if not moved:
            return self
        apply_aliases(self.posted, aliases)  # only its check: every name of a target agrees
        given = {target: self.attributes[name] for name, target in moved.items()}
        return replace(
            self,
            contact=_retyped(self.contact, given),
            is_test=_is_test(given["is_test"]) if "is_test" in given else self.is_test,
            attributes={n: v for n, v in self.attributes.items() if n not in moved},
            consent=_retyped(self.consent, given),
            consent_posted={
                **self.consent_posted,
                **{n: self.attributes[n] for n, t in moved.items() if t in _CONSENT},
            },
        )


def _retyped(typed: Mapping[str, str | None], given: Mapping[str, object]) -> dict[str, str | None]:
    return {n: _text_value(n, given[n]) if n in given else v for n, v in typed.items()}


def check_text(value: object, depth: int = 0) -> None:
    """Reject what PostgreSQL text/jsonb cannot store or JSON cannot express, at any depth."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidRequest(reason="invalid_characters")
        try:
            # Fast path: UTF-8 encoding fails exactly on lone surrogates (U+D800..U+DFFF).
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(reason="invalid_characters") from None
    elif isinstance(value, bool | int | None):
        return
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(reason="invalid_number")
    elif isinstance(value, Mapping | list | tuple):
        if depth >= MAX_DEPTH:
            raise InvalidRequest(reason="too_deep")
        if isinstance(value, Mapping):
            for key, item in value.items():
                check_text(key, depth + 1)
                check_text(item, depth + 1)
        else:
            for item in value:
                check_text(item, depth + 1)
    else:
        raise InvalidRequest(reason="wrong_type")


def parse_submission(fields: Mapping[str, object]) -> Submission:
    """Typed view of the merged body and query fields; raises InvalidRequest with a reason."""
    check_text(fields)
    known: dict[str, object] = {}
    attributes: dict[str, object] = {}
    consent_posted: dict[str, object] = {}
    for name, value in fields.items():
        folded = KNOWN_NAMES.get(fold_field_name(name))
        if folded is None:
            attributes[name] = value
            continue
        if folded in _CONSENT:
            consent_posted[name] = value
        if folded not in known:
            known[folded] = value
        elif not same_value(known[folded], value):
            raise InvalidRequest(reason="conflicting_values", field=folded)
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidRequest(reason="too_many_fields")
    return Submission(
        source_id=known.get("source_id"),
        source_key=known.get("source_key"),
        idempotency_key=known.get("idempotency_key"),
        contact={name: _text_value(name, known.get(name)) for name in CONTACT_FIELDS},
        is_test=_is_test(known.get("is_test")),
        attributes=attributes,
        consent={name: _text_value(name, known.get(name)) for name in CONSENT_FIELDS},
        consent_posted=consent_posted,
        posted=fields,
    )


def _text_value(name: str, value: object) -> str | None:
    if value is None:
        return None
    limit = _MAX_LENGTHS[name]
    if name in _INTEGER_CONTACT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        # A decimal string has more than 0.3 digits per bit: skip str() of absurd integers.
        if value.bit_length() > 4 * limit:
            raise InvalidRequest(reason="too_long", field=name)
        value = str(value)
    if not isinstance(value, str):
        raise InvalidRequest(reason="wrong_type", field=name)
    if len(value) > limit:
        raise InvalidRequest(reason="too_long", field=name)
    return value


def _is_test(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        flag = value.strip().lower()
        if flag in _TRUE:
            return True
        if flag in _FALSE:
            return False
    raise InvalidRequest(reason="wrong_type", field="is_test")
