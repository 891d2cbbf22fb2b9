-- The test-only chores feature: each run of a chore job, and the writes
-- that enqueue a job in their own transaction.
CREATE TABLE chore_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    instance TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    ran_at BIGINT NOT NULL,
    label TEXT NOT NULL
);
CREATE TABLE chore_writes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial BIGINT NOT NULL
);
