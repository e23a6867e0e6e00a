-- Requests made with an `Idempotency-Key`: the key is scoped to the user and
-- the route, bound to a fingerprint of the request, and keeps the response
-- the first request got, so a retry is answered exactly that. Not a read
-- model (nothing derives it from the log): a record of requests, kept by the
-- API. `status` is NULL while the first request is still running.
CREATE TABLE idempotency_keys (
    user_id      uuid        NOT NULL,
    route        text        NOT NULL,
    key          text        NOT NULL,
    fingerprint  bytea       NOT NULL,
    status       smallint,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (user_id, route, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
