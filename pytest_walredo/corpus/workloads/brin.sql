-- covers: BRIN CREATE_INDEX, INSERT(+INIT), UPDATE(+INIT), SAMEPAGE_UPDATE, REVMAP_EXTEND
-- (brin_summarize_new_values), DESUMMARIZE (brin_desummarize_range).
CREATE TABLE brin_t (a int, b int) WITH (fillfactor = 10);
CREATE INDEX brin_t_a ON brin_t USING brin (a) WITH (pages_per_range = 1);
INSERT INTO brin_t SELECT g, g FROM generate_series(1, 2000) g;
SELECT brin_summarize_new_values('brin_t_a');
UPDATE brin_t SET a = a + 5000 WHERE a % 50 = 0;
SELECT brin_desummarize_range('brin_t_a', 3);
SELECT brin_desummarize_range('brin_t_a', 5);
SELECT brin_summarize_range('brin_t_a', 3);
INSERT INTO brin_t SELECT -g, g FROM generate_series(1, 300) g;
SELECT brin_summarize_new_values('brin_t_a');
-- UPDATE(+INIT): summaries of a text column that outgrow their full regular page move to
-- another page (about 226 small summaries fill a page; 300 ranges of one heap page each).
CREATE TABLE brin_u (a int, t text) WITH (fillfactor = 10);
CREATE INDEX brin_u_t ON brin_u USING brin (t) WITH (pages_per_range = 1);
INSERT INTO brin_u SELECT g, lpad(g::text, 10, 'x') FROM generate_series(1, 6000) g;
SELECT brin_summarize_new_values('brin_u_t');
UPDATE brin_u SET t = t || repeat('z', 300) WHERE a % 20 = 0 AND a < 1200;
