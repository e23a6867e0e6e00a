-- Credentials (issue 18). The log keeps each credential's secret sealed
-- under a data key of its own; the data keys live here, wrapped by a master
-- key (its id beside it), outside the log: deleting a row destroys the only
-- way to open that credential's ciphertext. Not part of an events export.
CREATE TABLE credential_keys (
    credential_id uuid        PRIMARY KEY,
    master_key_id text        NOT NULL,
    wrapped       bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- The development master key, made once per database when ENCRYPTION_KEY
-- is not set, so that every instance on the database shares it.
CREATE TABLE vault_dev_key (
    id  integer PRIMARY KEY CHECK (id = 1),
    key bytea   NOT NULL
);

-- What a credential shows, never its secret (CredentialsMetaResponse).
CREATE TABLE rm_credentials (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL,
    provider     text        NOT NULL,
    type         text        NOT NULL,
    title        text,
    host         text,
    header_names jsonb       NOT NULL DEFAULT '[]',
    scopes       jsonb       NOT NULL DEFAULT '[]',
    expires_at   bigint,
    created_at   timestamptz NOT NULL
);
CREATE INDEX rm_credentials_user_idx ON rm_credentials (user_id, provider, created_at);
