-- The job queue: one row per job, kept after it finishes (completed or
-- discarded) for inspection until pruned. Times are Unix milliseconds.
CREATE TABLE petsage_jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('available', 'running', 'completed', 'discarded')),
    attempt BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    unique_key TEXT,
    lease_owner TEXT,
    leased_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
-- A unique key holds while its job is pending (waiting or running).
CREATE UNIQUE INDEX petsage_jobs_pending_key ON petsage_jobs (unique_key)
    WHERE state IN ('available', 'running');
CREATE INDEX petsage_jobs_due ON petsage_jobs (priority, run_at, id) WHERE state = 'available';
CREATE INDEX petsage_jobs_next ON petsage_jobs (run_at) WHERE state = 'available';
CREATE INDEX petsage_jobs_leases ON petsage_jobs (leased_until) WHERE state = 'running';
-- Only the pruning of completed jobs reads finished_at. (A plain index
-- led by state would tempt SQLite's planner away from petsage_jobs_due into
-- sorting every waiting job at each claim.)
CREATE INDEX petsage_jobs_completed ON petsage_jobs (finished_at) WHERE state = 'completed';

-- Each recurring schedule's next occurrence: an instance that moves it
-- forward (compare-and-set) enqueues that occurrence, so it runs once.
CREATE TABLE petsage_schedules (
    name TEXT PRIMARY KEY,
    expression TEXT NOT NULL,
    next_at BIGINT NOT NULL
);
