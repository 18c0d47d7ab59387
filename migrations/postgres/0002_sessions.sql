-- Sessions and the devices they were used from. Tokens are stored only as SHA-256 hashes (hex).
CREATE TABLE sessions (
    id                      UUID PRIMARY KEY NOT NULL,
    identity_id             UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    token_hash              TEXT NOT NULL,
    logout_token_hash       TEXT NOT NULL,
    active                  BOOLEAN NOT NULL DEFAULT TRUE,
    issued_at               TIMESTAMPTZ NOT NULL,
    authenticated_at        TIMESTAMPTZ NOT NULL,
    expires_at              TIMESTAMPTZ NOT NULL,
    aal                     TEXT NOT NULL,
    authentication_methods  JSONB NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX sessions_token_hash_idx ON sessions (token_hash);
CREATE UNIQUE INDEX sessions_logout_token_hash_idx ON sessions (logout_token_hash);
CREATE INDEX sessions_identity_idx ON sessions (identity_id, created_at);
CREATE INDEX sessions_created_idx ON sessions (created_at, id);

CREATE TABLE session_devices (
    id          UUID PRIMARY KEY NOT NULL,
    session_id  UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    ip_address  TEXT,
    user_agent  TEXT,
    location    TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX session_devices_session_idx ON session_devices (session_id);
