"""A client's idempotency key reused with another payload: each lead's fingerprint, and each
source's policy (`replay`, as before, or `reject`: 422).

`leads.fingerprint` is the SHA-256 of the lead's canonical content (the derived key's, whatever
the key). Leads stored before it have none, and replay whatever is posted under their key.
Erasure empties it, as it is a hash of the person's data.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE sources ADD COLUMN key_reuse text NOT NULL DEFAULT 'replay'
            CONSTRAINT sources_key_reuse_check CHECK (key_reuse IN ('replay', 'reject'))
        """
    )
    op.execute(
        """
        ALTER TABLE leads ADD COLUMN fingerprint text NULL
            CONSTRAINT leads_fingerprint_check CHECK (fingerprint ~ '^[0-9a-f]{64}$')
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE leads DROP COLUMN fingerprint")
    op.execute("ALTER TABLE sources DROP COLUMN key_reuse")
