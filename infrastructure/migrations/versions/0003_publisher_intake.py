"""Publisher intake: per-source key requirement, allowed networks, field aliases; client context.

Sources gain `require_key`, `allowed_networks` and `field_aliases` (all opt-in: the defaults
behave as before). Leads gain `client_ip` and `user_agent`, which the immutability trigger
covers like the other facts of how the lead arrived.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The columns of revision 0001, frozen here: a migration must not change when later code does.
_IMMUTABLE_BEFORE = (
    "lead_id",
    "source_id",
    "offer_id",
    "market_id",
    "vertical_id",
    "idempotency_key",
    "idempotency_key_origin",
    "email",
    "phone",
    "first_name",
    "last_name",
    "address",
    "city",
    "region",
    "postal_code",
    "country",
)
_IMMUTABLE_AFTER = (*_IMMUTABLE_BEFORE, "client_ip", "user_agent")

# Longest User-Agent kept per lead; the service truncates to it before inserting.
MAX_USER_AGENT_CHARS = 1024


def _guard_function(columns: tuple[str, ...]) -> str:
    old = ", ".join(f"OLD.{c}" for c in columns)
    new = ", ".join(f"NEW.{c}" for c in columns)
    return f"""
        CREATE OR REPLACE FUNCTION leads_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF ({new}) IS DISTINCT FROM ({old}) THEN
                RAISE EXCEPTION 'lead %: its bindings, idempotency key and raw contact '
                    'fields cannot change', OLD.lead_id
                    USING ERRCODE = 'restrict_violation';
            END IF;
            IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
                NEW.updated_at := now();
            END IF;
            RETURN NEW;
        END
        $$
        """


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE sources
            ADD COLUMN require_key boolean NOT NULL DEFAULT false,
            ADD COLUMN allowed_networks cidr[] NOT NULL DEFAULT '{}',
            ADD COLUMN field_aliases jsonb NOT NULL DEFAULT '{}'::jsonb
                CONSTRAINT sources_field_aliases_check
                CHECK (jsonb_typeof(field_aliases) = 'object')
        """
    )
    op.execute(
        f"""
        ALTER TABLE leads
            ADD COLUMN client_ip inet NULL,
            ADD COLUMN user_agent text NULL
                CONSTRAINT leads_user_agent_check
                CHECK (char_length(user_agent) <= {MAX_USER_AGENT_CHARS})
        """
    )
    op.execute(_guard_function(_IMMUTABLE_AFTER))


def downgrade() -> None:
    op.execute(_guard_function(_IMMUTABLE_BEFORE))
    op.execute("ALTER TABLE leads DROP COLUMN user_agent, DROP COLUMN client_ip")
    op.execute(
        "ALTER TABLE sources DROP COLUMN field_aliases, DROP COLUMN allowed_networks, "
        "DROP COLUMN require_key"
    )
