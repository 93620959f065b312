-- Per-connection policy for events already past their lock period when they arrive
-- (models.LateEvents): "lock" creates the action LOCKED with a reason, "refuse" rejects the row.
ALTER TABLE connections ADD COLUMN IF NOT EXISTS late_events VARCHAR DEFAULT 'lock';
UPDATE connections SET late_events = 'lock' WHERE late_events IS NULL;
-- A batch held for review reads "Needs review", not "Failed" (Failed is a failed transfer or
-- file): runs awaiting a reviewer with no failed file, and connections whose latest run is one.
UPDATE runs SET status = 'Needs review'
WHERE review = 'quarantined' AND status = 'Failed'
  AND NOT EXISTS (SELECT 1 FROM files f WHERE f.run_id = runs.id AND f.state IN ('rejected', 'failed'));
UPDATE connections SET status = 'Needs review'
WHERE status = 'Failed'
  AND (SELECT r.status FROM runs r WHERE r.connection_id = connections.id ORDER BY r.id DESC LIMIT 1)
      = 'Needs review';
