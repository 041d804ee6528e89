"""bench/ logic that needs no database: what it reads from wrk, pgbench, /proc and `leads import`,
the percentiles, the pgbench script, the lines the report prints, the yardstick's normalization,
and the one-line refusal on platforms bench/ does not support."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from bench import load, procfs, report, runner, workload, yardstick
from bench.import_summary import ImportSummary, parse_summary
from domain.normalization import normalize_email, normalize_phone
from infrastructure.repositories import LEAD_COLUMNS
from tests.support import derive_idempotency_key

WRK = """Running 1s test @ http://127.0.0.1:18765/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.26ms    4.17ms  35.70ms   75.37%
    Req/Sec   816.90    209.74     1.25k    70.00%
  Latency Distribution
     50%  706.00us
     75%    9.30ms
     90%   12.89ms
     99%    1.20s
  820 requests in 1.01s, 4.09MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    812.85
Transfer/sec:      4.05MB
"""
PGBENCH = """pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: /tmp/write_lead.sql
query mode: prepared
number of clients: 16
duration: 10 s
number of transactions actually processed: 36207
number of failed transactions: 2 (0.006%)
latency average = 0.110 ms
initial connection time = 12.414 ms
tps = 3620.019838 (without initial connection time)
"""
SUMMARY = "imported 20000 rows: 19990 created, 7 replayed, 3 rejected in 6.25 s (3200.0 rows/s)"


def test_reads_requests_latencies_in_any_unit_and_errors_from_wrk() -> None:
    assert load.parse_wrk(WRK) == {
        "requests": 820,
        "rps": 812.85,
        "p50_ms": 0.706,
        "p75_ms": 9.3,
        "p90_ms": 12.89,
        "p99_ms": 1200.0,
        "errors": 12,
    }


def test_wrk_without_errors_and_without_a_summary() -> None:
    clean = "\n".join(line for line in WRK.splitlines() if "errors" not in line.lower())
    assert load.parse_wrk(clean.replace("Non-2xx or 3xx responses: 7", ""))["errors"] == 0
    with pytest.raises(ValueError, match="no summary"):
        load.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_reads_tps_transactions_and_failures_from_pgbench() -> None:
    assert load.parse_pgbench(PGBENCH) == {"tps": 3620.019838, "transactions": 36207, "errors": 2}
    with pytest.raises(ValueError, match="no tps"):
        load.parse_pgbench("pgbench: error: connection to server failed")


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),
        ([float(v) for v in range(1, 101)], 99, 99.01),
        ([float(v) for v in range(1, 101)], 100, 100.0),
    ],
)
def test_percentiles_interpolate_between_ranks(
    values: list[float], p: float, expected: float
) -> None:
    assert load.percentile(values, p) == pytest.approx(expected)


# bench/run reads /proc and is Linux only; so are the tests of what it reads there.
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="Linux only: reads /proc, as bench/run does"
)


@linux_only
def test_reads_the_parent_and_cpu_of_a_process_whose_name_has_parentheses() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S", "41", *["0"] * 9, str(3 * ticks), str(ticks), *["0"] * 30]
    assert procfs.parse_stat(f"42 (uvicorn (a) b) {' '.join(fields)}") == (41, 4.0)


@linux_only
def test_reads_busy_and_total_jiffies_of_the_machine() -> None:
    text = "cpu  100 5 50 800 40 0 5 0 0 0\ncpu0 50 2 25 400 20 0 2 0 0 0\n"
    assert procfs.parse_machine(text) == (160, 1000)
    assert procfs.busy_cores((0, 0), (160, 1000)) == pytest.approx(0.16 * procfs.nproc())


@linux_only
def test_own_process_tree_uses_cpu() -> None:
    assert procfs.tree_cpu(os.getpid()) > 0


def test_pgbench_runs_the_services_statement_with_what_it_bound() -> None:
    row: dict[str, object] = {name: f"value-of-{name}" for name in LEAD_COLUMNS}
    row.update(is_test=False, user_agent=None)
    script, variables = load.pgbench_script(row, catalog_version=7)
    assert script.startswith("\\set idempotency_key :client_id * ")
    assert "gen_random_uuid()" in script
    assert ":lead_id" not in script
    assert ":user_agent" not in script
    assert variables["catalog_version"] == "7"
    assert variables["is_test"] == "false"
    assert variables["email"] == "value-of-email"
    assert not {"lead_id", "idempotency_key", "user_agent"} & set(variables)
    for name in variables:
        assert f":{name}" in script


def test_each_wrk_request_body_is_a_lead_with_its_own_key() -> None:
    before, after, accept = workload.wrk_arguments("run1", "text/plain")
    assert accept == "text/plain"
    lead = json.loads(before + "2-17" + after)  # what bench/leads.lua sends
    assert lead == workload.posted("run1-2-17")


def _pair(
    service_rps: float, yardstick_rps: float, tps: float, yardstick_first: bool = False
) -> dict[str, object]:
    def app(rps: float) -> dict[str, float]:
        return {"rps": rps, "p99_ms": 10.0, "cpu_us_per_request": 1e6 / rps, "seq_p50_ms": 2.0}

    return {
        "service": app(service_rps),
        "yardstick": app(yardstick_rps),
        "order": ["yardstick", "service"] if yardstick_first else ["service", "yardstick"],
        "pgbench": {"tps": tps},
    }


def test_prints_medians_and_ratios_of_the_pairs_and_the_targets() -> None:
    results: dict[str, object] = {
        "options": {"workers": "1", "duration": "10.0", "requests": "100", "accept": "text/plain"},
        "machine": {
            "nproc": 2,
            "commit": "abc",
            "postgresql": {"server_version": "15", "synchronous_commit": "on"},
        },
        "service_command": "python -m uvicorn web.app:app",
        "busy_before_cores": 0.1,
        "round_trips": {
            "service": {"new_lead": 1, "replay": 2},
            "yardstick": {"new_lead": 2, "replay": 3},
        },
        "pairs": [_pair(1000, 2000, 4000), _pair(1500, 2000, 2000), _pair(1200, 3000, 3000, True)],
        "import": ImportSummary(1000, 1000, 0, 0, 0.5, 2000.0).__dict__,
    }
    results["summary"] = report.summarize(results)
    lines = report.render(results).splitlines()
    # a table row's cells are set apart by two spaces or more
    rows = {cells[0]: cells[1:] for line in lines if (cells := re.split(r"\s{2,}", line.strip()))}
    assert rows["16 clients: requests/s"] == ["1,200", "2,000", "0.50 [0.40-0.75]"]
    assert rows["worker CPU per request (µs)"] == ["833", "500", "2.00 [1.33-2.50]"]
    assert rows["round trips: new lead / replay"] == ["1 / 2", "2 / 3"]
    assert rows["requests/s / pgbench tps"] == ["0.40 [0.25-0.75]", "1.00 [0.50-1.00]"]
    assert rows["3"] == ["yardstick", "1,200", "3,000", "3,000"]  # each pair: order, rates
    assert "  requests/s >= 0.5 x pgbench tps: 0.40 MISSED" in lines
    assert "  sequential p50 <= 3 ms: 2.00 met" in lines
    assert "  round trips per replay <= 2 (§11): 2 met" in lines
    assert "leads import: 2,000 rows/s (1,000 of 1,000 rows created in 0.5 s)" in lines
    assert lines[0].startswith("bench/run: 1 worker(s), 3 pair(s) of 10.0 s runs, 100 sequential")
    assert "requests, Accept: text/plain; medians" in lines[0]


@pytest.mark.parametrize(
    ("phone", "region"),
    [("(415) 555-0132", "US"), ("020 7946 0958", "GB"), ("+44 20 7946 0958", "US"),
     ("555-01", "US"), ("\uff14\uff11\uff15 555 0132", None), ("12 34 56 78 ext. 9", "US"),
     ("", "US")],
)  # fmt: skip
def test_the_yardstick_normalizes_phones_as_the_service(phone: str, region: str | None) -> None:
    assert yardstick.normalized_phone(phone, region) == normalize_phone(phone, region)


def test_the_yardstick_derives_the_services_key() -> None:
    contact = dict.fromkeys(yardstick.CONTACT)
    contact.update(first_name=" Ann ", city=" ", email=" X@Y.com", phone="(415) 555-0132")
    email, phone = normalize_email(contact["email"]), normalize_phone(contact["phone"], "US")
    attributes = {"utm": "é", "n": 3}
    expected = derive_idempotency_key(
        contact, normalized_email=email, normalized_phone=phone, is_test=True, attributes=attributes
    )
    assert yardstick.derived_key(contact, email, phone, True, attributes) == expected
    without_phone = derive_idempotency_key(
        contact, normalized_email=email, normalized_phone=None, is_test=False, attributes={}
    )
    assert yardstick.derived_key(contact, email, None, False, {}) == without_phone


def test_parses_the_import_summary_line() -> None:
    assert parse_summary(SUMMARY + "\n") == ImportSummary(
        rows=20000, created=19990, replayed=7, rejected=3, seconds=6.25, rows_per_s=3200.0
    )


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        SUMMARY + "\nleads: the database went away; the last line completed is 1234",
        SUMMARY.replace(" rows/s)", ")"),
    ],
)
def test_no_import_summary_when_the_last_line_is_not_one(stdout: str) -> None:
    assert parse_summary(stdout) is None


def test_refuses_other_platforms_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.platform", "win32")
    assert runner.main(["--quick"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "Linux only" in err
    assert "win32" in err
