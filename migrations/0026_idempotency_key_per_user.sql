-- An idempotency key names one request of a user: the same key on another
-- route, another path id or with another body is refused (422), where it
-- used to be a new record per route, so a client reusing a key elsewhere
-- got ids derived from it twice. The route stays, as the one that claimed
-- the key. Of records that shared a key across routes, the newest stays.
DELETE FROM idempotency_keys k USING idempotency_keys newer
 WHERE k.user_id = newer.user_id AND k.key = newer.key
   AND (k.created_at, k.route) < (newer.created_at, newer.route);
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (user_id, key);
