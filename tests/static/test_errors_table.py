"""The README's errors table is the one `python -m web.errors` prints from `ErrorCode`."""

from __future__ import annotations

from tests.support import ROOT
from web.errors import readme_errors_table

START, END = "<!-- errors:start -->", "<!-- errors:end -->"


def test_readme_errors_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert START in readme and END in readme, (
        f"README.md has no {START} … {END} section: put the output of `python -m web.errors` "
        "between those two lines"
    )
    table = readme[readme.index(START) + len(START) : readme.index(END)]
    assert table.strip("\n") == readme_errors_table().strip("\n"), (
        "README.md's errors table differs from `python -m web.errors`: paste its output between "
        f"{START} and {END}"
    )
