-- One-time codes of recovery and verification flows. Only an HMAC of each code is stored.
CREATE TABLE selfservice_codes (
    id           UUID PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    flow_id      UUID NOT NULL,
    identity_id  UUID REFERENCES identities (id) ON DELETE CASCADE,
    address_id   UUID,
    address      TEXT NOT NULL,
    code_hmac    TEXT NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX selfservice_codes_flow_idx ON selfservice_codes (kind, flow_id);
