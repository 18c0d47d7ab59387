-- Continuity containers: state carried across a redirect round trip (a settings change waiting for a refresh
-- sign-in). The payload is sealed with the cookie secret; a cookie of the browser names the container.
CREATE TABLE continuity_containers (
    id           UUID PRIMARY KEY NOT NULL,
    identity_id  UUID REFERENCES identities (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    payload      JSONB NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX continuity_containers_expires_idx ON continuity_containers (expires_at);
