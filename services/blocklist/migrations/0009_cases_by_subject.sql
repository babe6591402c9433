-- Each batch looks up a case of every subject whose list entries it rewrites (its kind and
-- masked name). Without this index that read the whole table: a batch at 2,000 cases read
-- 2,000 rows, and the cost grew with every case ever listed.
CREATE INDEX cases_by_subject ON {schema}.cases (subject_hash, case_id);
