-- The hash chain of migration 0016 is now computed by the event store in the
-- append (eventlog::chain, eventlog::seal::event_hash: the same bytes), not
-- by a row trigger: the trigger's PL/pgSQL took 14 of an insert's 26 µs. The
-- append inserts each event's hash and `recorded_at` (which the hash covers)
-- and inserts nothing unless the stored hash at the expected version is the
-- one it chained from, so concurrent writers cannot fork a chain: of two
-- writers at one version the unique (stream_id, version) lets one in, and a
-- writer with a stale hash fails the guard. `events import` computes the
-- chain the same way. `event_content` stays, for checks in SQL.
DROP TRIGGER events_chain_hash ON events;
DROP FUNCTION events_chain_hash();
