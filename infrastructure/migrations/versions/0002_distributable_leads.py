"""Leads keyed by source, and a catalog version that every catalog write bumps.

Every unique key of `leads` now contains `source_id` (the primary key becomes
`(source_id, lead_id)`), so `leads` can be hash-partitioned or distributed (Citus) by
`source_id` with every conflict inside one shard; a plain index keeps lookups by `lead_id`.

`catalog_version` holds one row. Statement-level triggers on every catalog table bump it in
the writing transaction, so a reader that sees version V sees exactly the catalog of V: the
ingest path caches what it read at V and writes a lead only while the version is still V.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CATALOG_TABLES = ("markets", "verticals", "offers", "sources", "source_http_mappings")


def upgrade() -> None:
    op.execute("ALTER TABLE leads DROP CONSTRAINT leads_pkey")
    op.execute("ALTER TABLE leads ADD CONSTRAINT leads_pkey PRIMARY KEY (source_id, lead_id)")
    op.execute("CREATE INDEX leads_lead_id_idx ON leads (lead_id)")
    op.execute(
        """
        CREATE TABLE catalog_version (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            version bigint NOT NULL
        )
        """
    )
    op.execute("INSERT INTO catalog_version (version) VALUES (1)")
    op.execute(
        """
        CREATE FUNCTION catalog_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE catalog_version SET version = version + 1;
            RETURN NULL;
        END
        $$
        """
    )
    for table in CATALOG_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_bump_catalog_version "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump()"
        )


def downgrade() -> None:
    for table in CATALOG_TABLES:
        op.execute(f"DROP TRIGGER {table}_bump_catalog_version ON {table}")
    op.execute("DROP FUNCTION catalog_version_bump()")
    op.execute("DROP TABLE catalog_version")
    op.execute("DROP INDEX leads_lead_id_idx")
    op.execute("ALTER TABLE leads DROP CONSTRAINT leads_pkey")
    op.execute("ALTER TABLE leads ADD CONSTRAINT leads_pkey PRIMARY KEY (lead_id)")
