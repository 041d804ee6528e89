"""Consent evidence in columns of its own, and erasing a person's data on request.

Leads gain the consent columns (TrustedForm certificate and ping URLs, the certificate id, the
Jornaya LeadiD token as posted and normalized, the consent text, `consent_at`, `page_url`) and
`erased_at`. The immutability trigger covers the consent columns like the contact fields, and
allows one more change, once: erasure, which sets `erased_at`, empties every column that holds
or points to the person's data, and replaces a derived idempotency key (a hash of that data)
by `erased:<lead_id>`. `lead_erasures` holds one audit row per erasure run, never the address
or number it matched.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen here: a migration must not change when later code does.
_IMMUTABLE_BEFORE = (
    *("lead_id", "source_id", "offer_id", "market_id", "vertical_id", "idempotency_key"),
    *("idempotency_key_origin", "email", "phone", "first_name", "last_name", "address", "city"),
    *("region", "postal_code", "country", "client_ip", "user_agent"),
)
_CONSENT = (
    "trustedform_cert_url",
    "trustedform_cert_id",
    "trustedform_ping_url",
    "jornaya_leadid",
    "normalized_jornaya_leadid",
    "tcpa_consent_text",
    "consent_at",
    "page_url",
)
_IMMUTABLE_AFTER = (*_IMMUTABLE_BEFORE, *_CONSENT, "erased_at")
# Never changed, not even by erasure.
_KEPT = ("lead_id", "source_id", "offer_id", "market_id", "vertical_id", "idempotency_key_origin")
# Emptied by erasure: the person's data, and what retrieves it elsewhere (a TrustedForm
# certificate, a LeadiD token, a page URL's query string). `consent_at` stays.
_ERASED = (
    *("email", "normalized_email", "phone", "normalized_phone", "first_name", "last_name"),
    *("address", "city", "region", "postal_code", "country", "client_ip", "user_agent"),
    *(c for c in _CONSENT if c != "consent_at"),
)
ERASED_KEY_PREFIX = "erased:"


def _tuple(prefix: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"{prefix}.{column}" for column in columns)


def _guard_function(checks: str) -> str:
    """The update guard: `checks` (PL/pgSQL) refuse what may not change; `updated_at` follows."""
    return f"""
        CREATE OR REPLACE FUNCTION leads_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
{checks}
            IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
                NEW.updated_at := now();
            END IF;
            RETURN NEW;
        END
        $$
        """


def _refuse_unless_erasure() -> str:
    all_erased = " AND ".join(f"NEW.{column} IS NULL" for column in _ERASED)
    immutable = _IMMUTABLE_AFTER
    return f"""\
            IF OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL THEN
                IF ({_tuple("NEW", _KEPT)}) IS DISTINCT FROM ({_tuple("OLD", _KEPT)})
                    OR NOT ({all_erased})
                    OR NEW.attributes IS DISTINCT FROM '{{}}'::jsonb
                    OR NEW.consent_at IS DISTINCT FROM OLD.consent_at
                    OR NEW.idempotency_key IS DISTINCT FROM (CASE OLD.idempotency_key_origin
                        WHEN 'derived' THEN '{ERASED_KEY_PREFIX}' || OLD.lead_id::text
                        ELSE OLD.idempotency_key END)
                THEN
                    RAISE EXCEPTION 'lead %: an erasure empties the person''s data and '
                        'changes nothing else', OLD.lead_id
                        USING ERRCODE = 'restrict_violation';
                END IF;
            ELSIF ({_tuple("NEW", immutable)}) IS DISTINCT FROM ({_tuple("OLD", immutable)}) THEN
                RAISE EXCEPTION 'lead %: its bindings, idempotency key, raw contact and consent '
                    'fields cannot change', OLD.lead_id
                    USING ERRCODE = 'restrict_violation';
            END IF;"""


def _refuse_any_change() -> str:
    new, old = _tuple("NEW", _IMMUTABLE_BEFORE), _tuple("OLD", _IMMUTABLE_BEFORE)
    return f"""\
            IF ({new}) IS DISTINCT FROM ({old}) THEN
                RAISE EXCEPTION 'lead %: its bindings, idempotency key and raw contact '
                    'fields cannot change', OLD.lead_id
                    USING ERRCODE = 'restrict_violation';
            END IF;"""


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE leads
            ADD COLUMN trustedform_cert_url text NULL
                CONSTRAINT leads_trustedform_cert_url_check
                CHECK (char_length(trustedform_cert_url) <= 2048),
            ADD COLUMN trustedform_cert_id text NULL
                CONSTRAINT leads_trustedform_cert_id_check
                CHECK (trustedform_cert_id ~ '^[0-9a-f]{40}$'),
            ADD COLUMN trustedform_ping_url text NULL
                CONSTRAINT leads_trustedform_ping_url_check
                CHECK (char_length(trustedform_ping_url) <= 2048),
            ADD COLUMN jornaya_leadid text NULL
                CONSTRAINT leads_jornaya_leadid_check CHECK (char_length(jornaya_leadid) <= 100),
            ADD COLUMN normalized_jornaya_leadid text NULL
                CONSTRAINT leads_normalized_jornaya_leadid_check
                CHECK (normalized_jornaya_leadid
                    ~ '^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$'),
            ADD COLUMN tcpa_consent_text text NULL
                CONSTRAINT leads_tcpa_consent_text_check
                CHECK (char_length(tcpa_consent_text) <= 10000),
            ADD COLUMN consent_at timestamptz NULL,
            ADD COLUMN page_url text NULL
                CONSTRAINT leads_page_url_check CHECK (char_length(page_url) <= 2048),
            ADD COLUMN erased_at timestamptz NULL
        """
    )
    op.execute(
        """
        CREATE TABLE lead_erasures (
            erasure_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz NULL,
            criterion text NOT NULL
                CHECK (criterion IN ('email', 'phone', 'received_before')),
            -- HMAC-SHA256 (hex) of the normalized email or phone under LEADS_ERASURE_KEY.
            criterion_hash text NULL CHECK (criterion_hash ~ '^[0-9a-f]{64}$'),
            received_before timestamptz NULL,
            source_id bigint NULL REFERENCES sources (source_id),
            leads_erased bigint NOT NULL DEFAULT 0 CHECK (leads_erased >= 0),
            CHECK ((criterion = 'received_before') = (received_before IS NOT NULL)),
            CHECK ((criterion = 'received_before') = (criterion_hash IS NULL))
        )
        """
    )
    op.execute(_guard_function(_refuse_unless_erasure()))


def downgrade() -> None:
    op.execute(_guard_function(_refuse_any_change()))
    op.execute("DROP TABLE lead_erasures")
    op.execute(
        "ALTER TABLE leads DROP COLUMN erased_at, DROP COLUMN page_url, DROP COLUMN consent_at, "
        "DROP COLUMN tcpa_consent_text, DROP COLUMN normalized_jornaya_leadid, "
        "DROP COLUMN jornaya_leadid, DROP COLUMN trustedform_ping_url, "
        "DROP COLUMN trustedform_cert_id, DROP COLUMN trustedform_cert_url"
    )
