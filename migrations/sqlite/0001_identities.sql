-- Identities, their credentials and addresses.
CREATE TABLE identities (
    id                BLOB PRIMARY KEY NOT NULL,
    schema_id         TEXT NOT NULL,
    traits            TEXT NOT NULL,
    state             TEXT NOT NULL DEFAULT 'active',
    state_changed_at  TEXT,
    metadata_public   TEXT,
    metadata_admin    TEXT,
    external_id       TEXT,
    organization_id   BLOB,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE UNIQUE INDEX identities_external_id_idx ON identities (external_id);

CREATE TABLE identity_credentials (
    id           BLOB PRIMARY KEY NOT NULL,
    identity_id  BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    config       TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_credentials_identity_type_idx ON identity_credentials (identity_id, type);

CREATE TABLE identity_credential_identifiers (
    id                      BLOB PRIMARY KEY NOT NULL,
    identity_credential_id  BLOB NOT NULL REFERENCES identity_credentials (id) ON DELETE CASCADE,
    identity_id             BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    type                    TEXT NOT NULL,
    identifier              TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_credential_identifiers_type_identifier_idx
    ON identity_credential_identifiers (type, identifier);
CREATE INDEX identity_credential_identifiers_identity_idx ON identity_credential_identifiers (identity_id);

CREATE TABLE identity_verifiable_addresses (
    id           BLOB PRIMARY KEY NOT NULL,
    identity_id  BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via          TEXT NOT NULL,
    value        TEXT NOT NULL,
    verified     BOOLEAN NOT NULL DEFAULT FALSE,
    verified_at  TEXT,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_verifiable_addresses_via_value_idx ON identity_verifiable_addresses (via, value);
CREATE INDEX identity_verifiable_addresses_identity_idx ON identity_verifiable_addresses (identity_id);

CREATE TABLE identity_recovery_addresses (
    id           BLOB PRIMARY KEY NOT NULL,
    identity_id  BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via          TEXT NOT NULL,
    value        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_recovery_addresses_via_value_idx ON identity_recovery_addresses (via, value);
CREATE INDEX identity_recovery_addresses_identity_idx ON identity_recovery_addresses (identity_id);
