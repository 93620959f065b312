-- Actions a run changed, apart from those it created. A modifications file creates none and
-- a corrected re-delivery only re-points the replaced record's action, yet both were counted
-- in actions_created ("actions 5 created"). From now on actions_created counts new actions
-- only; modified, reversed and re-pointed ones count here. Earlier runs keep the old mixed
-- count in actions_created (what each changed is no longer told apart) and 0 here.
ALTER TABLE runs ADD COLUMN actions_changed BIGINT DEFAULT 0;
