-- Self-service flows of every kind (login, registration, settings, recovery, verification) in one table.
CREATE TABLE selfservice_flows (
    id                 BLOB PRIMARY KEY NOT NULL,
    kind               TEXT NOT NULL,
    type               TEXT NOT NULL,
    state              TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    issued_at          TEXT NOT NULL,
    request_url        TEXT NOT NULL,
    return_to          TEXT,
    active             TEXT,
    ui                 TEXT NOT NULL,
    csrf_token         TEXT NOT NULL,
    identity_id        BLOB REFERENCES identities (id) ON DELETE CASCADE,
    session_id         BLOB,
    refresh            BOOLEAN NOT NULL DEFAULT FALSE,
    requested_aal      TEXT NOT NULL,
    transient_payload  TEXT,
    internal_context   TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX selfservice_flows_expires_idx ON selfservice_flows (expires_at);
