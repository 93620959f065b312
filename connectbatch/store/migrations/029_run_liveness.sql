-- Whether a run In Progress is still alive, also when the store is shared by several hosts or
-- containers (distributed mode): a pid alone means nothing in another pid namespace, and a pid
-- used again by an unrelated process kept a dead run In Progress for ever.
-- host: the machine, its boot and its pid namespace (store/liveness.py `node`); pid_start: the
-- process's start time (clock ticks after boot, /proc/<pid>/stat), 0 where unknown. NULL on runs
-- from before (judged by their pid, as then).
ALTER TABLE runs ADD COLUMN host VARCHAR;
ALTER TABLE runs ADD COLUMN pid_start BIGINT;
-- A process's heartbeat while it has runs In Progress (every HEARTBEAT_SECONDS): what tells
-- another host that they are alive. One row a process, not a column of `runs`: a beat never
-- touches a run's row, which the run's own load transaction updates.
CREATE TABLE run_beats (
    host        VARCHAR NOT NULL,
    pid         INTEGER NOT NULL,
    pid_start   BIGINT NOT NULL,
    beat_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (host, pid, pid_start)
);
