"""The schema revision the code expects and the one a database is at, read without Alembic
(whose import takes about 0.35 s, a sixth of the service's start-up): the head of
`migrations/versions/` from each file's `revision` and `down_revision`, and the database's
`alembic_version` table. `infrastructure/migrate.py` applies the migrations."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infrastructure.engine import unavailable_on_db_failure

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# A revision file's module-level `revision = "…"` and `down_revision = "…" | None`.
_REVISION_LINE = re.compile(r'^(revision|down_revision) = (?:"([^"]+)"|None)$', re.MULTILINE)


@cache
def head_revision() -> str:
    """The one revision that no other revision revises."""
    revises: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text("utf-8")
        lines: dict[str, str | None] = {m[1]: m[2] for m in _REVISION_LINE.finditer(text)}
        revision = lines.get("revision")
        if revision is None:
            raise RuntimeError(f'{path.name}: no `revision = "…"` line')
        revises[revision] = lines.get("down_revision")
    heads = sorted(set(revises) - set(revises.values()))
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have one head, not {heads or 'none'}")
    return heads[0]


async def current_revision(connection: AsyncConnection) -> str | None:
    """The revision the database is at: None when it was never migrated (several, joined by
    commas, would be a branched history: never the head)."""
    exists = await connection.exec_driver_sql("SELECT to_regclass('alembic_version')")
    if exists.scalar() is None:
        return None
    rows = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
    return ",".join(sorted(row[0] for row in rows)) or None


class SqlSchemaProbe:
    """Answers `CheckReadiness` (queries/readiness.py) from the `alembic_version` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.expected_revision = head_revision()

    async def current_revision(self) -> str | None:
        async with unavailable_on_db_failure(), self._engine.connect() as connection:
            return await current_revision(connection)
