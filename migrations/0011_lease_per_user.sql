-- Leases name the run's user, so the per-user cap on running runs holds
-- across every instance: a lease is only granted while the user holds
-- fewer live leases than the cap (decided under a per-user advisory lock).
ALTER TABLE executor_leases ADD COLUMN user_id uuid;
CREATE INDEX executor_leases_user_idx ON executor_leases (user_id, expires_at);
