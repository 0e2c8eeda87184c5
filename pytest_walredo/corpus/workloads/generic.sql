-- requires-extension: bloom
-- covers: Generic (generic WAL, written by the bloom index access method: inserts, page
-- initialization, VACUUM).
CREATE EXTENSION IF NOT EXISTS bloom;
CREATE TABLE bloom_t (a int, b int, c text);
CREATE INDEX bloom_t_idx ON bloom_t USING bloom (a, b, c) WITH (length = 80);
INSERT INTO bloom_t SELECT g, g % 17, 'v' || g FROM generate_series(1, 3000) g;
DELETE FROM bloom_t WHERE a % 3 = 0;
VACUUM bloom_t;
INSERT INTO bloom_t SELECT g, g % 5, 'w' FROM generate_series(1, 500) g;
