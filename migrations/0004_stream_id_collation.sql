-- Stream ids are compared for equality and kept unique with their version,
-- never sorted for people: byte order is all they need. Under a linguistic
-- collation every comparison in the (stream_id, version) index went through
-- strcoll, the costliest step of a batched append's index maintenance.
ALTER TABLE events ALTER COLUMN stream_id TYPE text COLLATE "C";
