"""What the `leads` verbs share."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

# `leads import` words its database failures with this.
from infrastructure.database_problems import diagnosed_line as diagnosed_line


def run_async(coroutine: Coroutine[Any, Any, object]) -> int:
    """Run a verb's coroutine; an int it returns is the exit status, anything else is 0."""
    result = asyncio.run(coroutine)
    return int(result) if isinstance(result, int) else 0
