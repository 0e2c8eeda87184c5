-- covers: Btree index builds, INSERT_LEAF, INSERT_UPPER, INSERT_META, SPLIT_L and SPLIT_R on
-- leaf and internal levels (wide keys keep the fan-out small), NEWROOT, DEDUP and INSERT_POST
-- (posting list splits), DELETE (bottom-up and simple deletion), VACUUM, MARK_PAGE_HALFDEAD,
-- UNLINK_PAGE(_META) (page deletion), REUSE_PAGE, META_CLEANUP.
CREATE TABLE bt_wide (k text);
CREATE INDEX bt_wide_k ON bt_wide (k);
INSERT INTO bt_wide SELECT repeat(md5(g::text), 24) FROM generate_series(1, 300) g;
INSERT INTO bt_wide SELECT repeat(lpad(g::text, 8, '0'), 90) FROM generate_series(1, 150) g;
CREATE TABLE bt_dup (a int, b int, c text);
CREATE INDEX bt_dup_a ON bt_dup (a);
CREATE INDEX bt_dup_b ON bt_dup (b);
INSERT INTO bt_dup SELECT g % 7, g, 'x' FROM generate_series(1, 6000) g;
INSERT INTO bt_dup SELECT 3, g, 'y' FROM generate_series(6001, 6600) g;
UPDATE bt_dup SET b = b + 100000 WHERE b % 10 = 0;
UPDATE bt_dup SET c = c || 'z', b = b + 1 WHERE a = 5;
UPDATE bt_dup SET c = c || 'z', b = b + 1 WHERE a = 5;
DELETE FROM bt_wide WHERE k < 'a';
VACUUM bt_wide;
VACUUM bt_wide;
INSERT INTO bt_wide SELECT repeat(md5((g * 3)::text), 24) FROM generate_series(1, 120) g;
DELETE FROM bt_dup WHERE a IN (1, 2);
VACUUM bt_dup;
