-- Which worker holds which running run, until when. Operational state, not
-- truth: a worker renews its lease while it runs a run and deletes it when
-- done; a run RUNNING with no live lease is taken over by another worker,
-- which appends ExecutionResumed with the stream's expected version (so a
-- worker that was only slow finds the stream moved and stands down).
CREATE TABLE executor_leases (
    execution_id uuid        PRIMARY KEY,
    worker       text        NOT NULL,
    expires_at   timestamptz NOT NULL
);
