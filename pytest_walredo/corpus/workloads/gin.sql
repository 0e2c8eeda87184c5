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
