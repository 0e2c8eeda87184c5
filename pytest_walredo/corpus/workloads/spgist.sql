-- covers: SPGist ADD_LEAF, MOVE_LEAFS, PICKSPLIT (points, quad tree), ADD_NODE and SPLIT_TUPLE
-- (text, radix tree), VACUUM_LEAF, VACUUM_ROOT, VACUUM_REDIRECT.
CREATE TABLE spg_t (id int, p point, t text);
CREATE INDEX spg_t_p ON spg_t USING spgist (p);
CREATE INDEX spg_t_t ON spg_t USING spgist (t);
INSERT INTO spg_t SELECT g, point(g % 101, g % 89), 'k' || (g % 400) || repeat('s', g % 5)
  FROM generate_series(1, 3000) g;
INSERT INTO spg_t SELECT g, point(1, 1), 'prefix' || g FROM generate_series(1, 300) g;
DELETE FROM spg_t WHERE id % 3 <> 0;
VACUUM spg_t;
INSERT INTO spg_t SELECT g, point(g % 7, g % 5), 'z' || g FROM generate_series(1, 200) g;
VACUUM spg_t;
-- covers: SPGist VACUUM_ROOT (a root page that is still a leaf) and the nulls tree (ADD_LEAF
-- with storesNulls).
CREATE TABLE spg_r (id int, p point);
CREATE INDEX spg_r_p ON spg_r USING spgist (p);
INSERT INTO spg_r SELECT g, CASE WHEN g % 4 = 0 THEN NULL ELSE point(g, g) END FROM generate_series(1, 40) g;
DELETE FROM spg_r WHERE id % 2 = 0;
VACUUM spg_r;
