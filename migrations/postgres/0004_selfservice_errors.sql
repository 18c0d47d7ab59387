-- Errors of browser flows, shown by the error UI through `GET /self-service/errors?id=`.
CREATE TABLE selfservice_errors (
    id          UUID PRIMARY KEY NOT NULL,
    error       JSONB NOT NULL,
    seen_at     TIMESTAMPTZ,
    was_seen    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX selfservice_errors_created_idx ON selfservice_errors (created_at);
