-- Every block says why (#16): the target its measure is held against, and the rule, facts
-- and land classes the registry's decision matched. Blocks applied before this recorded
-- none of it: their target is NULL (the catalogue's then stands) and their rule empty.
ALTER TABLE {schema}.blocks
    ADD COLUMN target text,
    ADD COLUMN rule   text   NOT NULL DEFAULT '',
    ADD COLUMN facts  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN land   text[] NOT NULL DEFAULT '{}';

-- Where a case is: the keyed hashes of its site's identifiers (events.privacy
-- SubjectHasher.site_hashes), which its site-targeted blocks are held against. Recorded
-- from case.filed and replaced by a case.corrected that carries new facts (`site_event`
-- names the event that set them). A case listed before this has none, so its site blocks
-- hold at no site: a check there answers "blocked at another site", as for a v1 entry.
ALTER TABLE {schema}.cases
    ADD COLUMN site_hashes text[] NOT NULL DEFAULT '{}',
    ADD COLUMN site_event  text;
