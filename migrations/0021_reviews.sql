-- Human reviews of running nodes (HumanInTheLoop), written by the
-- executions projector: one row per review asked, WAITING until decided.
CREATE TABLE rm_reviews (
    node_exec_id   uuid        PRIMARY KEY,
    execution_id   uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    node_id        text        NOT NULL,
    payload        jsonb,
    instructions   text,
    editable       boolean     NOT NULL,
    status         text        NOT NULL,
    review_message text,
    was_edited     boolean,
    processed      boolean     NOT NULL DEFAULT false,
    timeout_at     timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz,
    reviewed_at    timestamptz
);
CREATE INDEX rm_reviews_user_idx ON rm_reviews (user_id, created_at DESC) WHERE status = 'WAITING';
CREATE INDEX rm_reviews_execution_idx ON rm_reviews (execution_id);
CREATE INDEX rm_reviews_timeout_idx ON rm_reviews (timeout_at) WHERE status = 'WAITING' AND timeout_at IS NOT NULL;
