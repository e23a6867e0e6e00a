-- Presets: saved inputs for a graph version (LibraryAgentPreset).
CREATE TABLE rm_presets (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL,
    graph_id      uuid        NOT NULL,
    graph_version integer     NOT NULL,
    name          text        NOT NULL,
    description   text        NOT NULL,
    inputs        jsonb       NOT NULL,
    credentials   jsonb       NOT NULL,
    is_active     boolean     NOT NULL,
    is_deleted    boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX rm_presets_user_graph_idx ON rm_presets (user_id, graph_id, updated_at DESC) WHERE NOT is_deleted;
