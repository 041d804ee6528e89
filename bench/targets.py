"""The targets, as data: one table from which the report's target column and `--check` are both
derived. A target compares measured numbers, found by key in the results, with a value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bench.new_lead_sql import FOUR_STATEMENTS, ratio_key
from bench.workload import IDENTICAL

Comparison = Literal["<=", ">=", "==", "±"]

_COMPARE: dict[Comparison, tuple[str, Callable[[float, float], bool]]] = {
    "<=": ("≤", lambda measured, value: measured <= value),
    ">=": ("≥", lambda measured, value: measured >= value),
    "==": ("=", lambda measured, value: measured == value),
    "±": ("±", lambda measured, value: abs(measured) <= value),
}


@dataclass(frozen=True)
class Target:
    name: str
    keys: tuple[str, ...]  # dotted paths into the results; the target applies to each
    comparison: Comparison
    value: float
    source: str
    unit: str = ""
    shown: str | None = None  # how the report states it, when "= 0" would not say what it means

    def text(self) -> str:
        return self.shown or f"{_COMPARE[self.comparison][0]} {self.value:g}{self.unit}"

    def met_by(self, measured: float) -> bool:
        return _COMPARE[self.comparison][1](measured, self.value)


def _both_pools(metric: str) -> tuple[str, ...]:
    return tuple(f"concurrent_{pool}.{metric}" for pool in ("cold_pool", "warm_pool"))


SPEC = "SPEC §9"
TARGETS: tuple[Target, ...] = (
    Target("sequential p50", ("sequential.p50_ms",), "<=", 3, SPEC),
    Target("sequential p95", ("sequential.p95_ms",), "<=", 6, SPEC),
    Target("sequential p99", ("sequential.p99_ms",), "<=", 12, SPEC),
    Target("sequential: every response 201", ("sequential.non_201",), "==", 0, SPEC, "", "all 201"),
    Target("concurrent: one 201", _both_pools("responses_201"), "==", 1, "SPEC §8"),
    Target(
        "concurrent: the others 200", _both_pools("responses_200"), "==", IDENTICAL - 1, "SPEC §8"
    ),
    Target("concurrent: one lead_id", _both_pools("distinct_lead_ids"), "==", 1, "SPEC §8"),
    Target("concurrent: one row", _both_pools("rows"), "==", 1, "SPEC §8"),
    Target("sustained: no errors", ("sustained.errors", "soak.errors"), "==", 0, "issue 6"),
    Target(
        "sustained: a row per response",
        ("sustained.missing_rows",),
        "==",
        0,
        SPEC,
        shown="≥ responses",
    ),
    # SPEC §9 asks for 0.5 of the service's own SQL; issue 6 set 0.35 for this 2-core machine,
    # measured against the four-statement transaction the service then ran, and kept there.
    Target("service rps / pgbench tps", (ratio_key(FOUR_STATEMENTS),), ">=", 0.35, "issue 6"),
    Target(
        "round trips per new lead",
        ("round_trips.new_lead.round_trips", "round_trips.new_lead.wire_round_trips"),
        "==",
        1,
        "issue 14",
    ),
    Target(
        "round trips per replay",
        ("round_trips.replay.round_trips", "round_trips.replay.wire_round_trips"),
        "==",
        2,
        "issue 14",
    ),
    Target("soak: RSS flat", ("soak.rss.drift_pct",), "±", 10, "issue 6", " %"),
    Target(
        "service log clean",
        ("service_log.tracebacks", "service_log.error_lines"),
        "==",
        0,
        "bench: no error under load",
    ),
    Target("import rows/s vs HTTP rps", ("import.rows_per_s_vs_http",), ">=", 1.5, "issue 12"),
    Target("import: exit status", ("import.exit_status",), "==", 0, "issue 12"),
    Target(
        "import: every row created and stored",
        ("import.not_created", "import.missing_rows"),
        "==",
        0,
        "issue 12",
        shown="all created, all stored",
    ),
    Target("import: memory flat", ("import.rss_growth_pct",), "<=", 10, "issue 12", " %"),
)

_BY_KEY = {key: target for target in TARGETS for key in target.keys}
assert len(_BY_KEY) == sum(len(t.keys) for t in TARGETS), "a metric has two targets"


def for_key(key: str) -> Target | None:
    return _BY_KEY.get(key)


_ABSENT = object()


def lookup(results: Mapping[str, Any], key: str) -> Any:
    value: Any = results
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return value


@dataclass(frozen=True)
class Verdict:
    target: Target
    key: str
    measured: Any
    status: Literal["met", "missed", "not run"]

    def line(self) -> str:
        t = self.target
        return f"{t.name}: {self.key} = {self.measured} (target {t.text()}, {t.source})"


def verdict(results: Mapping[str, Any], target: Target, key: str) -> Verdict:
    """Not run when the phase (the key's first part) has no results; missed when the phase ran
    but the number is missing or not a number."""
    if key.split(".", 1)[0] not in results:
        return Verdict(target, key, None, "not run")
    measured = lookup(results, key)
    if measured is _ABSENT:
        measured = None
    ok = isinstance(measured, int | float) and target.met_by(measured)
    return Verdict(target, key, measured, "met" if ok else "missed")


def evaluate(results: Mapping[str, Any]) -> list[Verdict]:
    return [verdict(results, target, key) for target in TARGETS for key in target.keys]
