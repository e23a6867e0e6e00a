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
    agent_input                       jsonb,
    onboarding_agent_execution_id     text,
    updated_at                        timestamptz NOT NULL
);
