-- The user's runs by time, deleted ones included. The onboarding view counts
-- every run a user ever started (a deleted run was still run), which the
-- partial index of 0008 cannot serve: each call scanned the whole table
-- three times. Lists of runs filter out the few deleted rows as they go.
DROP INDEX IF EXISTS rm_graph_executions_user_idx;
CREATE INDEX rm_graph_executions_user_idx ON rm_graph_executions (user_id, created_at DESC);
