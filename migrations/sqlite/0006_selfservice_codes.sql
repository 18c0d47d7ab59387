-- One-time codes of recovery and verification flows. Only an HMAC of each code is stored.
CREATE TABLE selfservice_codes (
    id           BLOB PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    flow_id      BLOB NOT NULL,
    identity_id  BLOB REFERENCES identities (id) ON DELETE CASCADE,
    address_id   BLOB,
    address      TEXT NOT NULL,
    code_hmac    TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX selfservice_codes_flow_idx ON selfservice_codes (kind, flow_id);
