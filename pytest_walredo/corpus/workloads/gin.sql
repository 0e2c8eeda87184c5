-- covers: Gin INSERT_LISTPAGE and UPDATE_META_PAGE (fast update's pending list),
-- DELETE_LISTPAGE (pending list cleanup), INSERT and SPLIT on entry and data pages,
-- CREATE_PTREE (posting trees), VACUUM_PAGE, VACUUM_DATA_LEAF_PAGE, DELETE_PAGE.
CREATE TABLE gin_t (id int, a int[]);
CREATE INDEX gin_t_fast ON gin_t USING gin (a) WITH (fastupdate = on, gin_pending_list_limit = 64);
INSERT INTO gin_t SELECT g, ARRAY[g % 50, g % 7, g] FROM generate_series(1, 1500) g;
SELECT gin_clean_pending_list('gin_t_fast');
CREATE TABLE gin_s (id int, a int[]);
CREATE INDEX gin_s_slow ON gin_s USING gin (a) WITH (fastupdate = off);
INSERT INTO gin_s SELECT g, ARRAY[g % 3, g] FROM generate_series(1, 3000) g;
INSERT INTO gin_s SELECT g, ARRAY[1, g + 5000] FROM generate_series(1, 2000) g;
DELETE FROM gin_s WHERE id % 2 = 0;
VACUUM gin_s;
DELETE FROM gin_t WHERE id % 3 = 0;
VACUUM gin_t;
-- Wide keys (1280 characters) leave room for five tuples a page: the entry tree grows two
-- levels, and the split of its internal root logs the child it completes (SPLIT with a
-- checked block).
CREATE TABLE gin_w (id int, a text[]);
CREATE INDEX gin_w_idx ON gin_w USING gin (a) WITH (fastupdate = off);
INSERT INTO gin_w SELECT g, ARRAY[(SELECT string_agg(md5((g * 100 + i)::text), '') FROM generate_series(1, 40) i)]
  FROM generate_series(1, 40) g;
-- One key in 27500 rows: CREATE INDEX builds a posting tree of four leaves (COPY's
-- multi-inserts and fillfactor 10 keep the WAL small); VACUUM after the rows of its middle
-- leaves are deleted removes those leaves (DELETE_PAGE).
CREATE TABLE gin_p (id int, a int[] DEFAULT '{1}') WITH (fillfactor = 10);
COPY gin_p (id) FROM PROGRAM 'seq 1 27500';
CREATE INDEX gin_p_idx ON gin_p USING gin (a) WITH (fastupdate = off);
COPY gin_p (id) FROM PROGRAM 'seq 27501 28500';
DELETE FROM gin_p WHERE id BETWEEN 6001 AND 22000;
VACUUM gin_p;
