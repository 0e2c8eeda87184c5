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
