-- Zero-downtime rebuilds: which version of its code built each read model,
-- and the state of the latest rebuild of each (shared by every process, so
-- any instance's admin route shows a rebuild another process runs).
ALTER TABLE projection_checkpoints ADD COLUMN version integer NOT NULL DEFAULT 1;

CREATE TABLE projection_rebuilds (
    name          text        PRIMARY KEY,
    -- 'rebuilding', 'done' or 'failed'; a 'rebuilding' row whose heartbeat
    -- (updated_at) stopped is reported as stalled.
    state         text        NOT NULL,
    version       integer     NOT NULL,
    events_done   bigint      NOT NULL DEFAULT 0,
    events_total  bigint      NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    error         text
);
