-- API keys for the external API. `rm_api_keys` is a read model, written only
-- by its projector; it holds no hash: a request finds its candidate keys by
-- `lookup` (a short fast digest of the key) and checks the secret against
-- the slow hash in the key's stream.
CREATE TABLE rm_api_keys (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL,
    name        text NOT NULL,
    description text,
    scopes      text[] NOT NULL,
    status      text NOT NULL,
    head        text NOT NULL,
    tail        text NOT NULL,
    lookup      text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX rm_api_keys_user_idx ON rm_api_keys (user_id, created_at DESC, id);
CREATE INDEX rm_api_keys_lookup_idx ON rm_api_keys (lookup);

-- When each key was last used: telemetry, not a fact of the log. Written by
-- the API at most once a minute per key (so it lags by up to that), kept
-- apart from the read model so that a rebuild does not forget it.
CREATE TABLE api_key_usage (
    key_id       uuid PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);
