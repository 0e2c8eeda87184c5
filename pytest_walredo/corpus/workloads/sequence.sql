-- covers: Sequence LOG (creation, nextval every 32 values, setval, ALTER SEQUENCE RESTART).
CREATE SEQUENCE seq_a;
CREATE SEQUENCE seq_b INCREMENT 7 CACHE 5;
SELECT count(nextval('seq_a')) FROM generate_series(1, 200);
SELECT count(nextval('seq_b')) FROM generate_series(1, 100);
SELECT setval('seq_a', 10000);
SELECT nextval('seq_a');
ALTER SEQUENCE seq_b RESTART WITH 3;
SELECT nextval('seq_b');
CREATE TABLE seq_t (id serial, v int);
INSERT INTO seq_t (v) SELECT g FROM generate_series(1, 100) g;
