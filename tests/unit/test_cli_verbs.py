"""`leads --help` loads no verb's module; `leads VERB …` loads that verb's alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli.main import VERBS
from tests.support import ROOT

LOADED = (
    "import sys\n"
    "from cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(' '.join(sorted(sys.modules)))\n"
)


def loaded_by(*argv: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(result.stdout.split())


def test_help_loads_argparse_alone() -> None:
    loaded = loaded_by("--help")
    assert not {module for module, _ in VERBS.values()} & loaded
    assert not {"sqlalchemy", "pydantic", "asyncpg", "uvicorn", "yaml"} & loaded


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_verbs_help_loads_that_verb_and_no_other_verb(verb: str) -> None:
    loaded = loaded_by(verb, "--help")
    own = VERBS[verb][0]
    assert own in loaded
    # `serve` uses `catalog`'s helpers (its file reader, its summary); nothing else.
    allowed = {own, "cli.catalog"} if verb == "serve" else {own}
    assert {module for module, _ in VERBS.values()} & loaded == allowed
