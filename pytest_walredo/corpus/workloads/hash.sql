-- covers: Hash INIT_META_PAGE, INIT_BITMAP_PAGE, INSERT, SPLIT_ALLOCATE_PAGE, SPLIT_PAGE (only
-- as the first record of later entries: its one block is an applied image), SPLIT_COMPLETE,
-- ADD_OVFL_PAGE (many duplicates), DELETE, SPLIT_CLEANUP, SQUEEZE_PAGE, MOVE_PAGE_CONTENTS,
-- UPDATE_META_PAGE (VACUUM), VACUUM_ONE_PAGE (killed items, then inserts into the full page).
CREATE TABLE hash_t (a int, b int);
CREATE INDEX hash_t_a ON hash_t USING hash (a);
INSERT INTO hash_t SELECT g, g FROM generate_series(1, 4000) g;
INSERT INTO hash_t SELECT 7, g FROM generate_series(1, 1500) g;
DELETE FROM hash_t WHERE b % 3 = 0;
VACUUM hash_t;
DELETE FROM hash_t WHERE a = 7 AND b > 200;
SET enable_seqscan = off;
SET enable_bitmapscan = off;  -- an index scan marks the dead tuples LP_DEAD (a bitmap scan would not)
SELECT count(*) FROM hash_t WHERE a = 7;
RESET enable_seqscan;
RESET enable_bitmapscan;
INSERT INTO hash_t SELECT 7, g FROM generate_series(1, 400) g;
VACUUM hash_t;
