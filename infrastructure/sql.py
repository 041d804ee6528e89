"""Named-parameter SQL compiled once to the driver's positional form (`:name` → `$n`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Statement:
    """`text` reads with `:name` parameters; `sql` is what asyncpg prepares (`$1`, `$2`, …)."""

    text: str
    sql: str = field(init=False)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        object.__setattr__(self, "sql", _PARAMETER.sub(number, self.text))
        object.__setattr__(self, "names", tuple(names))

    def args(self, params: Mapping[str, object]) -> tuple[object, ...]:
        return tuple(params[name] for name in self.names)
