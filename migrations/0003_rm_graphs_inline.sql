-- Graph models are mostly 2-8 KB: above the default 2 KB threshold Postgres
-- tries to compress every row on insert, which cost more CPU than the rest of
-- the insert. Keep rows up to a page inline and uncompressed; larger ones are
-- still compressed and moved out of line as usual.
ALTER TABLE rm_graphs SET (toast_tuple_target = 8160);
