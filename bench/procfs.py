"""CPU and memory of processes and of the machine, read from Linux's /proc."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def nproc() -> int:
    return len(os.sched_getaffinity(0))


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """`pid` and all its descendant processes."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def process_cpu(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of one process, None once it has exited."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) / _TICKS, int(fields[12]) / _TICKS)


def tree_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and its descendants (a service and its workers)."""
    user = system = 0.0
    for each in descendants(pid):
        if (cpu := process_cpu(each)) is not None:
            user, system = user + cpu[0], system + cpu[1]
    return user, system


def tree_memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB, summed over a process and its descendants."""
    rss = hwm = 0
    for each in descendants(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        if found := re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE):
            rss += int(found.group(1))
        if found := re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE):
            hwm += int(found.group(1))
    return rss, hwm


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total * nproc() if total else 0.0


class RssSampler:
    """Samples the RSS of a process tree every `interval` seconds in a background thread."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.peak_hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def _sample(self) -> None:
        rss, hwm = tree_memory_kib(self.pid)
        if rss:  # nothing once the process has exited
            self.samples.append((round(time.monotonic() - self._started, 2), rss))
            self.peak_hwm_kib = max(self.peak_hwm_kib, hwm)

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"samples": []}
        start, end = self.samples[0][1], self.samples[-1][1]
        return {
            "start_kib": start,
            "end_kib": end,
            "max_kib": max(kib for _, kib in self.samples),
            "peak_hwm_kib": self.peak_hwm_kib,
            "drift_pct": round((end - start) / start * 100, 2) if start else None,
            "samples": self.samples,
        }
