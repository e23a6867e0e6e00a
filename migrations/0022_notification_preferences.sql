-- Notification preferences of a user (NotificationPreferencesSet).
ALTER TABLE rm_users
    ADD COLUMN notification_email       text,
    ADD COLUMN notification_preferences jsonb   NOT NULL DEFAULT '{}',
    ADD COLUMN daily_email_limit        integer NOT NULL DEFAULT 10;
