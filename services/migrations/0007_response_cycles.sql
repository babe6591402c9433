-- A measure a correction lifts can be owed again by a later correction, so a department's
-- answers on one measure come in cycles. Each requirement written takes the next number
-- (required_seq): "lifted since it was last owed" is then a comparison of two rows. Each
-- answer names the event it answers (the acknowledgement's caused_by), so an answer to a
-- requirement since replaced is told from one that came before its requirement.
CREATE SEQUENCE response_requirement_seq;
ALTER TABLE responses ADD COLUMN required_seq bigint, ADD COLUMN answers text;

-- Rows written before: numbered in the order they were required, applies before lifts.
UPDATE responses AS r SET required_seq = o.n
FROM (SELECT case_id, department, measure, action,
             row_number() OVER (ORDER BY required_at, action) AS n
      FROM responses WHERE required_at IS NOT NULL) AS o
WHERE (r.case_id, r.department, r.measure, r.action)
    = (o.case_id, o.department, o.measure, o.action);
SELECT setval('response_requirement_seq', coalesce(max(required_seq), 0) + 1, false)
FROM responses;
