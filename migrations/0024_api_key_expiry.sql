-- When an API key stops working (ApiKeyCreated.expires_at), if ever.
ALTER TABLE rm_api_keys ADD COLUMN expires_at timestamptz;
