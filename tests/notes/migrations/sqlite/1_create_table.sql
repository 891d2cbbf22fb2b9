-- The notes table, SQLite flavour; migrations/postgres/ holds the same for PostgreSQL.
CREATE TABLE "notes" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200)
);
