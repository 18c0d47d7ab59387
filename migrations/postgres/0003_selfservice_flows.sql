-- Self-service flows of every kind (login, registration, settings, recovery, verification) in one table.
CREATE TABLE selfservice_flows (
    id                 UUID PRIMARY KEY NOT NULL,
    kind               TEXT NOT NULL,
    type               TEXT NOT NULL,
    state              TEXT NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,
    issued_at          TIMESTAMPTZ NOT NULL,
    request_url        TEXT NOT NULL,
    return_to          TEXT,
    active             TEXT,
    ui                 JSONB NOT NULL,
    csrf_token         TEXT NOT NULL,
    identity_id        UUID REFERENCES identities (id) ON DELETE CASCADE,
    session_id         UUID,
    refresh            BOOLEAN NOT NULL DEFAULT FALSE,
    requested_aal      TEXT NOT NULL,
    transient_payload  JSONB,
    internal_context   JSONB NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX selfservice_flows_expires_idx ON selfservice_flows (expires_at);
