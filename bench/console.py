"""What the benchmark says on stderr while it runs, and the error that stops a run."""

from __future__ import annotations

import sys


class BenchError(RuntimeError):
    """A run cannot go on (a tool is missing, a child failed): reported in one line, no report."""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
