-- The courier outbox: e-mail messages and their delivery attempts. `next_attempt_at`, `lease_until` and
-- `created_us` are Unix microseconds as on SQLite, so both backends run the same queries.
CREATE TABLE courier_messages (
    id               UUID PRIMARY KEY NOT NULL,
    status           TEXT NOT NULL,
    type             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    body_plaintext   TEXT NOT NULL,
    template_type    TEXT NOT NULL,
    template_data    JSONB NOT NULL,
    channel          TEXT,
    send_count       INTEGER NOT NULL DEFAULT 0,
    identity_id      UUID REFERENCES identities (id) ON DELETE SET NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    claimed_by       UUID,
    created_us       BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX courier_messages_due_idx ON courier_messages (status, next_attempt_at);
CREATE INDEX courier_messages_lease_idx ON courier_messages (status, lease_until);
CREATE INDEX courier_messages_claimed_by_idx ON courier_messages (claimed_by);
CREATE INDEX courier_messages_list_idx ON courier_messages (created_us, id);
CREATE INDEX courier_messages_recipient_idx ON courier_messages (recipient);

CREATE TABLE courier_message_dispatches (
    id          UUID PRIMARY KEY NOT NULL,
    message_id  UUID NOT NULL REFERENCES courier_messages (id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    error       JSONB,
    created_us  BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX courier_message_dispatches_message_idx ON courier_message_dispatches (message_id, created_us);
