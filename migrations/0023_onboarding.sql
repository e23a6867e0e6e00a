-- A user's onboarding (UserOnboarding), one row per user who has one.
CREATE TABLE rm_onboarding (
    user_id                           uuid        PRIMARY KEY,
    completed_steps                   jsonb       NOT NULL DEFAULT '[]',
    wallet_shown                      boolean     NOT NULL DEFAULT false,
    notified                          jsonb       NOT NULL DEFAULT '[]',
    usage_reason                      text,
    integrations                      jsonb       NOT NULL DEFAULT '[]',
    other_integrations                text,
    selected_store_listing_version_id text,
    -- json, not jsonb: kept as sent, so a number beyond f64 is read back as
    -- it was accepted rather than expanded into digits no client parses.
    agent_input                       json,
    onboarding_agent_execution_id     text,
    updated_at                        timestamptz NOT NULL
);
