-- covers: Gist PAGE_UPDATE, PAGE_SPLIT (inserts after a build), DELETE (killed and vacuumed
-- items), PAGE_DELETE (VACUUM of emptied pages), PAGE_REUSE.
CREATE TABLE gist_t (id int, p point, r box);
CREATE INDEX gist_t_p ON gist_t USING gist (p);
CREATE INDEX gist_t_r ON gist_t USING gist (r);
INSERT INTO gist_t SELECT g, point(g % 97, g / 97), box(point(g % 50, g % 31), point(g % 50 + 1, g % 31 + 2))
  FROM generate_series(1, 4000) g;
DELETE FROM gist_t WHERE id < 2500;
VACUUM gist_t;
INSERT INTO gist_t SELECT g, point(g % 13, g % 11), box(point(g, g), point(g + 1, g + 1))
  FROM generate_series(1, 800) g;
-- covers: Gist DELETE. Index scans mark the entries of deleted rows dead (gistkillitems, no
-- WAL); inserts into those leaves, once full, remove them first (gistprunepage).
CREATE TABLE gist_k (id int, p point);
CREATE INDEX gist_k_p ON gist_k USING gist (p);
INSERT INTO gist_k SELECT g, point(g % 40, g / 40) FROM generate_series(1, 1200) g;
DELETE FROM gist_k WHERE id % 3 <> 0;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM gist_k WHERE p <@ box(point(0, 0), point(40, 30));
RESET enable_seqscan;
RESET enable_bitmapscan;
INSERT INTO gist_k SELECT g, point(g % 40 + 0.5, g / 40 + 0.5) FROM generate_series(1, 600) g;
