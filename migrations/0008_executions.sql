-- Graph executions and their node executions, as the executions projector
-- folds them from the `execution-<id>` streams. Data columns are jsonb so
-- the projector can add one pin or one output at a time; strings reaching
-- them never hold NUL (the API refuses it, the executor replaces it).

CREATE TABLE rm_graph_executions (
    id               uuid        PRIMARY KEY,
    user_id          uuid        NOT NULL,
    graph_id         uuid        NOT NULL,
    graph_version    integer     NOT NULL,
    preset_id        uuid,
    status           text        NOT NULL,
    inputs           jsonb       NOT NULL,
    -- By AgentOutput name, every value its output nodes were given.
    outputs          jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    ended_at         timestamptz,
    node_exec_count  integer     NOT NULL DEFAULT 0,
    node_error_count integer     NOT NULL DEFAULT 0,
    error            text,
    is_deleted       boolean     NOT NULL DEFAULT false,
    share_token      uuid,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX rm_graph_executions_user_idx ON rm_graph_executions (user_id, created_at DESC) WHERE NOT is_deleted;
CREATE INDEX rm_graph_executions_graph_idx ON rm_graph_executions (graph_id, created_at DESC) WHERE NOT is_deleted;
-- The executor's candidates.
CREATE INDEX rm_graph_executions_queued_idx ON rm_graph_executions (created_at) WHERE status = 'QUEUED';

CREATE TABLE rm_node_executions (
    id           uuid        PRIMARY KEY,
    execution_id uuid        NOT NULL,
    -- Creation order (within a run, the order of its events).
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    node_id      text        NOT NULL,
    block_id     text        NOT NULL,
    status       text        NOT NULL,
    -- The pins received until it is queued, then the input it runs on.
    input_data   jsonb       NOT NULL DEFAULT '{}',
    output_data  jsonb       NOT NULL DEFAULT '{}',
    add_time     timestamptz NOT NULL,
    queue_time   timestamptz,
    start_time   timestamptz,
    end_time     timestamptz
);
CREATE INDEX rm_node_executions_run_idx ON rm_node_executions (execution_id, seq);
