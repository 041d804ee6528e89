"""Each source's reply format: the format its answers are written in when the request's
`Accept` header leaves the choice to the service (`json`, `xml` or `text`).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE sources ADD COLUMN reply_format text NOT NULL DEFAULT 'json'
            CONSTRAINT sources_reply_format_check CHECK (reply_format IN ('json', 'xml', 'text'))
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE sources DROP COLUMN reply_format")
