-- When a change took effect at the brand: an action-modifications row's ModificationDate
-- (else the time the file was processed), a person's change the time it was made. The
-- newest effective change of an action wins: a modification dated before the one the action
-- already carries, arriving later (files out of order), is refused instead of overwriting it.
-- NULL on rows from before and on locks: their changed_at stands in.
ALTER TABLE action_audit ADD COLUMN effective_at TIMESTAMPTZ;
