-- The graph model is written once per version and served whole; nothing
-- queries inside it but the library search's `->> 'description'`. As
-- `jsonb`, every insert parsed, rebuilt and key-sorted it (about a tenth of
-- the database's work per created graph); as `json` it is only validated and
-- kept as written. `is_active` is folded in when it is read.
ALTER TABLE rm_graphs ALTER COLUMN model TYPE json USING model::json;
