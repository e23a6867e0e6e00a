-- The append-only event log.
--
-- Global order is (tx_id, position), not position alone: identity values are
-- handed out before commit, so a later position can become visible before an
-- earlier one. Readers only read rows whose transaction id is below the
-- oldest transaction still running (pg_snapshot_xmin), so every row they can
-- ever see later sorts after everything they have already seen.
--
-- Payloads are `json`, not `jsonb`: the log keeps each event byte for byte as
-- it was written (key order included, for auditors), nothing queries inside
-- it, and appends skip the conversion to jsonb (about a fifth of the cost of
-- a batched append).
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY,
    tx_id          bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    data           json        NOT NULL,
    metadata       json        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- The global order is the key; identity values are unique by construction
    -- and need no index of their own (one index fewer on every append).
    CONSTRAINT events_pkey PRIMARY KEY (tx_id, position),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_version_positive CHECK (version > 0)
);

-- One row per projector: how far it has applied the log, in global order.
CREATE TABLE projection_checkpoints (
    name          text        PRIMARY KEY,
    tx_id         bigint      NOT NULL DEFAULT 0,
    position      bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_error    text,
    last_error_at timestamptz
);
