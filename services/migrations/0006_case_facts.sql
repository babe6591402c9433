-- The facts of the case (events.models.CaseFacts) that the measures' conditions rest on:
-- recorded at filing, replaced by a correction that gives new ones. A case filed before
-- facts were recorded keeps NULL and is decided as events.decisions.UNRECORDED_FACTS.
ALTER TABLE cases ADD COLUMN facts jsonb;
