"""Per-source field aliases: a publisher's own field names renamed to ours before the field rules.

An alias maps a publisher's name (`fname`, `zip`) to one of the fields a source cannot be
selected by: the contact fields, `is_test` and the consent fields. Selectors (`source_id`,
`source_key`, `idempotency_key`) are never alias targets, because aliases are known only once
the source is. Names match ignoring the case of ASCII letters, like the known field names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from domain.errors import InvalidRequest
from domain.fields import ALIAS_TARGETS, KNOWN_NAMES, fold_field_name, same_value


def is_known_field_name(name: str) -> bool:
    """Whether a posted name already stands for a known field, so it cannot be an alias."""
    return fold_field_name(name) in KNOWN_NAMES


def is_usable_alias(alias: str, target: str) -> bool:
    """Whether a stored (alias, target) pair can apply: a folded, unknown name; a valid target.

    The catalog writes only usable pairs; rows written with plain SQL may hold others,
    which are ignored (and reported by `leads catalog check`).
    """
    return (
        alias == fold_field_name(alias)
        and not is_known_field_name(alias)
        and target in ALIAS_TARGETS
    )


def usable_aliases(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The aliases `apply_aliases` takes, from stored (alias, target) pairs."""
    return {alias: target for alias, target in pairs if is_usable_alias(alias, target)}


def apply_aliases(fields: Mapping[str, object], aliases: Mapping[str, str]) -> dict[str, object]:
    """`fields` with every aliased name renamed to its target; other names as posted.

    `aliases` maps folded alias names to targets (as the catalog stores them). When an
    alias and its target (in any case, or another alias of it) are both posted, their
    values must be equal, else `invalid_request` `conflicting_values`; equal values are
    kept once, under the target's name.
    """
    if not aliases:
        return dict(fields)
    targets = set(aliases.values())
    renamed: dict[str, object] = {}
    # The value each target was given under any of its names, to compare the others with.
    given: dict[str, object] = {}
    for name, value in fields.items():
        folded = fold_field_name(name)
        target = aliases.get(folded)
        if target is None:
            target = KNOWN_NAMES.get(folded)
            if target not in targets:
                renamed[name] = value
                continue
            key = name  # the target itself, posted in some case or under another name
        else:
            key = target
        if target in given:
            if not same_value(given[target], value):
                raise InvalidRequest(reason="conflicting_values", field=target)
            continue
        given[target] = value
        renamed[key] = value
    return renamed
