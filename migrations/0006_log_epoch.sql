-- Transaction ids belong to the server that issued them. After a dump and
-- restore, or a move to a new cluster, new transactions get ids below the
-- stored tx_ids: new events would sort before existing checkpoints and never
-- be delivered. So the order key is the server's transaction id plus a
-- stored offset, bumped (at startup, see `PgEventStore::ensure_order`) when
-- the server's current id is not above every stored tx_id. The log is never
-- rewritten; the horizon carries the same offset.
CREATE TABLE log_epoch (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    xid_offset bigint      NOT NULL DEFAULT 0,
    -- How often, and when last, the offset was raised.
    generation integer     NOT NULL DEFAULT 0,
    bumped_at  timestamptz
);
INSERT INTO log_epoch DEFAULT VALUES;

-- The order key of an event appended by the current transaction.
CREATE FUNCTION log_tx_id() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS
    'SELECT pg_current_xact_id()::text::bigint + (SELECT xid_offset FROM log_epoch)';

-- Below this order key every transaction has finished: readers read below it.
CREATE FUNCTION log_horizon() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS
    'SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + (SELECT xid_offset FROM log_epoch)';

ALTER TABLE events ALTER COLUMN tx_id SET DEFAULT log_tx_id();
