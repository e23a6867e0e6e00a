-- Read models. Each table is written only by its projector, in the same
-- transaction that moves that projector's checkpoint.

CREATE TABLE rm_users (
    id         uuid        PRIMARY KEY,
    email      text        NOT NULL,
    name       text,
    timezone   text        NOT NULL DEFAULT 'not-set',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One row per graph version; `model` is the served GraphModel JSON except
-- `is_active`, which lives in its own column because activation changes it.
CREATE TABLE rm_graphs (
    id         uuid        NOT NULL,
    version    integer     NOT NULL,
    user_id    uuid        NOT NULL,
    is_active  boolean     NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    model      jsonb       NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE INDEX rm_graphs_user_idx ON rm_graphs (user_id) WHERE is_active;

CREATE TABLE rm_library_agents (
    id                  uuid        PRIMARY KEY,
    user_id             uuid        NOT NULL,
    graph_id            uuid        NOT NULL,
    graph_version       integer     NOT NULL,
    auto_update_version boolean     NOT NULL DEFAULT true,
    is_favorite         boolean     NOT NULL DEFAULT false,
    is_archived         boolean     NOT NULL DEFAULT false,
    is_deleted          boolean     NOT NULL DEFAULT false,
    is_created_by_user  boolean     NOT NULL DEFAULT true,
    settings            jsonb       NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX rm_library_agents_user_idx ON rm_library_agents (user_id, updated_at DESC) WHERE NOT is_deleted;
CREATE INDEX rm_library_agents_graph_idx ON rm_library_agents (graph_id);
