"""bench/ pieces that need no database: the `leads import` summary parser, the targets table's
verdicts and report cells, and the one-line refusal on platforms bench/ does not support."""

from __future__ import annotations

import pytest

from bench import runner, targets
from bench.import_summary import ImportSummary, parse_summary

SAMPLE = "imported 20000 rows: 19990 created, 7 replayed, 3 rejected in 6.25 s (3200.0 rows/s)"


def test_parses_the_import_summary_line() -> None:
    assert parse_summary(SAMPLE + "\n") == ImportSummary(
        rows=20000, created=19990, replayed=7, rejected=3, seconds=6.25, rows_per_s=3200.0
    )


def test_reads_only_the_last_line_and_accepts_integers_and_separators() -> None:
    stdout = (
        "imported 1 rows: 1 created, 0 replayed, 0 rejected in 1.0 s (1.0 rows/s)\n"
        "warning: line 7: unknown column kept as an attribute\n"
        "imported 20,000 rows: 20,000 created, 0 replayed, 0 rejected in 7 s (2,857 rows/s)\n\n"
    )
    summary = parse_summary(stdout)
    assert summary is not None
    assert (summary.rows, summary.created, summary.seconds, summary.rows_per_s) == (
        20000,
        20000,
        7.0,
        2857.0,
    )


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        SAMPLE + "\nleads: the database went away; the last line completed is 1234",
        SAMPLE.replace(" rows/s)", ")"),
        "usage: leads [-h] COMMAND\nleads: error: argument COMMAND: invalid choice: 'import'",
    ],
)
def test_no_summary_when_the_last_line_is_not_one(stdout: str) -> None:
    assert parse_summary(stdout) is None


def test_a_target_is_not_run_without_its_phase_and_missed_without_its_number() -> None:
    p50 = targets.for_key("sequential.p50_ms")
    assert p50 is not None
    assert p50.text() == "≤ 3"
    fast, slow = {"sequential": {"p50_ms": 2.9}}, {"sequential": {"p50_ms": 3.1}}
    assert targets.verdict(fast, p50, "sequential.p50_ms").status == "met"
    assert targets.verdict(slow, p50, "sequential.p50_ms").status == "missed"
    assert targets.verdict({}, p50, "sequential.p50_ms").status == "not run"
    assert targets.verdict({"sequential": {}}, p50, "sequential.p50_ms").status == "missed"


def test_both_round_trip_counters_share_one_expected_value_per_kind() -> None:
    for kind in ("new_lead", "replay"):
        counted = {
            targets.for_key(f"round_trips.{kind}.{c}") for c in ("round_trips", "wire_round_trips")
        }
        assert len(counted) == 1
        assert None not in counted


def test_refuses_other_platforms_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.platform", "win32")
    assert runner.main(["--duration", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "Linux only" in err
    assert "win32" in err
