-- Cron schedules as the schedules projector folds them from the
-- `schedule-<id>` streams. A deleted schedule's row is removed: nothing
-- reads it any more, and the log keeps its history.
CREATE TABLE rm_schedules (
    id                uuid        PRIMARY KEY,
    user_id           uuid        NOT NULL,
    graph_id          uuid        NOT NULL,
    graph_version     integer     NOT NULL,
    name              text        NOT NULL,
    cron              text        NOT NULL,
    timezone          text        NOT NULL,
    input_data        jsonb       NOT NULL,
    input_credentials jsonb       NOT NULL,
    -- NULL once the expression matches no more.
    next_run_time     timestamptz,
    last_fire_time    timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX rm_schedules_user_idx ON rm_schedules (user_id, created_at);
-- The scheduler's question: which schedules are due.
CREATE INDEX rm_schedules_due_idx ON rm_schedules (next_run_time) WHERE next_run_time IS NOT NULL;
