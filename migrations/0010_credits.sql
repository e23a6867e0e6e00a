-- Credits as the credits projector folds them from the `credits-<user>`
-- ledgers. A user with no row has the starting grant and no history yet.
CREATE TABLE rm_credit_balances (
    user_id    uuid        PRIMARY KEY,
    balance    bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One row per grant or top-up, and one per run for its usage (charges of
-- the run's node executions summed, as AutoGPT's history groups them).
CREATE TABLE rm_credit_transactions (
    user_id            uuid        NOT NULL,
    transaction_key    text        NOT NULL,
    kind               text        NOT NULL,
    amount             bigint      NOT NULL,
    running_balance    bigint      NOT NULL,
    transaction_time   timestamptz NOT NULL,
    reason             text,
    admin_id           uuid,
    usage_graph_id     uuid,
    usage_execution_id uuid,
    usage_node_count   integer     NOT NULL DEFAULT 0,
    usage_start_time   timestamptz,
    PRIMARY KEY (user_id, transaction_key)
);
CREATE INDEX rm_credit_transactions_time_idx ON rm_credit_transactions (user_id, transaction_time DESC);
CREATE INDEX rm_credit_transactions_all_idx ON rm_credit_transactions (transaction_time DESC);
