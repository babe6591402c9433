-- Each batch asks which of its cases have active blocks (case_id = ANY(...)). The primary
-- key leads with the measure, so without this index that question read the whole table:
-- a backlog drained at 4k events/s at first and 1.2k/s by 60k events.
CREATE INDEX blocks_by_case ON {schema}.blocks (case_id) WHERE lifted_at IS NULL;
