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
