-- Issue #16: a case's facts, and what each block is held against and why.
-- A case recorded before facts has none (NULL): its blocks were held against the subject.
ALTER TABLE {schema}.cases ADD COLUMN facts jsonb;

-- target: subject | site | project. target_ref: the subject's id (a JSON string), the
-- site or the project (JSON objects as events carry them). rule, land and facts: the
-- registry's decision, the condition it matched and the land classes and facts it met.
ALTER TABLE {schema}.blocks
    ADD COLUMN target     text  NOT NULL DEFAULT 'subject'
        CHECK (target IN ('subject', 'site', 'project')),
    ADD COLUMN target_ref jsonb,
    ADD COLUMN rule       text  NOT NULL DEFAULT '',
    ADD COLUMN land       jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN facts      jsonb NOT NULL DEFAULT '[]';

-- Every block before this one was held against its subject, wherever it acted.
UPDATE {schema}.blocks SET target_ref = to_jsonb(subject_id) WHERE target_ref IS NULL;
