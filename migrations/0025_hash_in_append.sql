-- The hash chain of migration 0016 is now computed by the event store in the
-- append (eventlog::chain, eventlog::seal::event_hash: the same bytes), not
-- by the row trigger for every event: its PL/pgSQL took 14 of an insert's
-- 26 µs, most of a batched append. The append inserts each event's hash and
-- `recorded_at` (which the hash covers), and inserts nothing unless the
-- stored hash at the expected version is the one it chained from, so
-- concurrent writers cannot fork a chain: of two writers at one version the
-- unique (stream_id, version) lets one in, and a writer holding a stale hash
-- fails the guard. `events import` computes the chain the same way.
--
-- The trigger stays for rows that arrive without a hash: a binary from
-- before this migration still running during a rolling upgrade, or a
-- hand-written INSERT. Its WHEN clause is evaluated without entering
-- PL/pgSQL, so the append pays nothing for it.
DROP TRIGGER events_chain_hash ON events;
CREATE TRIGGER events_chain_hash BEFORE INSERT ON events FOR EACH ROW
    WHEN (NEW.hash IS NULL) EXECUTE FUNCTION events_chain_hash();
