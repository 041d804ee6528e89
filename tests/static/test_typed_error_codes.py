"""A code that is not in `ErrorCode` is a type error, never a `KeyError` (a 500) at run time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

UNKNOWN_CODES = """\
from domain.errors import LeadError
from web.errors import error_body, error_response


class NewError(LeadError):
    code = "new_code"


error_response("new_code", "A code the table does not hold.")
error_body("new_code", "A code the table does not hold.")
"""


def test_mypy_refuses_a_code_the_table_does_not_hold(tmp_path: Path) -> None:
    module = tmp_path / "unknown_codes.py"
    module.write_text(UNKNOWN_CODES, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", ".mypy_cache/linux", str(module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert [line.split(":")[1] for line in errors] == ["6", "9", "10"], result.stdout
    assert "[assignment]" in errors[0] and all("[arg-type]" in e for e in errors[1:])
