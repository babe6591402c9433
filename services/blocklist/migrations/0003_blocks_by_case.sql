-- Each batch asks which of its cases have active blocks (case_id = ANY(...)). The primary
-- key leads with the measure, so without this index that question read the whole table
-- once per batch, and the builder slowed as its lists grew.
CREATE INDEX blocks_by_case ON {schema}.blocks (case_id) WHERE lifted_at IS NULL;
