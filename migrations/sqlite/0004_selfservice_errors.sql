-- Errors of browser flows, shown by the error UI through `GET /self-service/errors?id=`.
CREATE TABLE selfservice_errors (
    id          BLOB PRIMARY KEY NOT NULL,
    error       TEXT NOT NULL,
    seen_at     TEXT,
    was_seen    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX selfservice_errors_created_idx ON selfservice_errors (created_at);
