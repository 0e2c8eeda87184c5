-- covers: Heap INSERT(+INIT), HOT_UPDATE, UPDATE (same page and across pages), DELETE, LOCK
-- (FOR UPDATE / FOR KEY SHARE), CONFIRM (INSERT .. ON CONFLICT), INPLACE (VACUUM's pg_class
-- update); Heap2 MULTI_INSERT(+INIT) (COPY), PRUNE (on access and in VACUUM), VACUUM,
-- FREEZE_PAGE, VISIBLE; TRUNCATE (a new file, then INSERT+INIT again); aborted subtransactions.
CREATE TABLE heap_t (id int, v text) WITH (fillfactor = 60);
CREATE INDEX heap_t_id ON heap_t (id);
INSERT INTO heap_t SELECT g, repeat('x', g % 40) FROM generate_series(1, 1500) g;
UPDATE heap_t SET v = v || 'h' WHERE id % 5 = 0;
UPDATE heap_t SET id = -id WHERE id % 13 = 0;
UPDATE heap_t SET v = repeat('w', 400) WHERE id % 29 = 0;
DELETE FROM heap_t WHERE id % 7 = 0;
BEGIN; SELECT count(*) FROM (SELECT * FROM heap_t WHERE id % 11 = 0 FOR UPDATE) s; COMMIT;
BEGIN; SELECT count(*) FROM (SELECT * FROM heap_t WHERE id % 19 = 0 FOR KEY SHARE) s; COMMIT;
BEGIN; SAVEPOINT a; INSERT INTO heap_t VALUES (-1, 'rolled back'); ROLLBACK TO a; INSERT INTO heap_t VALUES (-2, 'kept'); COMMIT;
UPDATE heap_t SET v = v || 'p' WHERE id % 3 = 0;
SELECT count(*) FROM heap_t WHERE v LIKE '%p';
CREATE TABLE heap_u (k int PRIMARY KEY, n int);
INSERT INTO heap_u SELECT g, 0 FROM generate_series(1, 300) g ON CONFLICT (k) DO UPDATE SET n = heap_u.n + 1;
INSERT INTO heap_u SELECT g, 0 FROM generate_series(150, 450) g ON CONFLICT (k) DO UPDATE SET n = heap_u.n + 1;
CREATE TABLE heap_c (a int, b text);
COPY heap_c FROM PROGRAM 'seq 1 1200 | sed s/$/,c/' WITH (FORMAT csv);
VACUUM heap_t;
DELETE FROM heap_c WHERE a % 4 = 0;
VACUUM (FREEZE) heap_c;
INSERT INTO heap_c VALUES (0, 'after freeze');
TRUNCATE heap_c;
INSERT INTO heap_c SELECT g, 'again' FROM generate_series(1, 50) g;
