-- A run's lease taken and given up in one round trip each, committed without
-- waiting for the disk. Leases are coordination, not record (see 0009): the
-- run's stream decides who may append. A lost grant cannot matter, since the
-- worker's first append commits synchronously after it and the log is
-- flushed in order, so that flush makes the grant durable too; a lost
-- release leaves a row that expires on its own.
--
-- The per-user count runs after the per-user lock is held: in PL/pgSQL each
-- statement takes a fresh snapshot, so it sees every grant committed before
-- the lock was ours, as the separate statements did before.
CREATE FUNCTION executor_lease_acquire(
    p_execution uuid, p_user uuid, p_worker text, p_seconds double precision, p_per_user bigint
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    others bigint;
    won text;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user::text, 7));
    SELECT count(*) INTO others FROM executor_leases
        WHERE user_id = p_user AND expires_at >= now() AND execution_id <> p_execution;
    IF others >= p_per_user THEN
        RETURN 'capped';
    END IF;
    INSERT INTO executor_leases (execution_id, worker, expires_at, user_id)
        VALUES (p_execution, p_worker, now() + make_interval(secs => p_seconds), p_user)
        ON CONFLICT (execution_id) DO UPDATE SET worker = excluded.worker, expires_at = excluded.expires_at,
            user_id = excluded.user_id
        WHERE executor_leases.expires_at < now() OR executor_leases.worker = excluded.worker
        RETURNING worker INTO won;
    RETURN CASE WHEN won IS NULL THEN 'held' ELSE 'granted' END;
END $$;

CREATE FUNCTION executor_lease_release(p_execution uuid, p_worker text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    DELETE FROM executor_leases WHERE execution_id = p_execution AND worker = p_worker;
END $$;
