-- Webhook-triggered presets (issue 18, part 3). A webhook's signing secret
-- is sealed like a credential's: its data key is a row of credential_keys
-- under the webhook's id, destroyed when the webhook is deleted.

-- What a webhook shows, never its secret (AutoGPT's Webhook).
CREATE TABLE rm_webhooks (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL,
    provider       text        NOT NULL,
    webhook_type   text        NOT NULL,
    preset_id      uuid        NOT NULL,
    graph_id       uuid        NOT NULL,
    graph_version  integer     NOT NULL,
    last_pinged_at timestamptz,
    is_deleted     boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL
);
CREATE INDEX rm_webhooks_user_idx ON rm_webhooks (user_id);

-- The webhook a preset is triggered by; null for presets run by hand.
ALTER TABLE rm_presets ADD COLUMN webhook_id uuid;
