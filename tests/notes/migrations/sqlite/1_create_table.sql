-- The notes table, SQLite flavour; migrations/postgres/ holds the same for PostgreSQL.
-- Each row belongs to the caller who created it: the token's issuer and subject.
CREATE TABLE "notes" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_issuer TEXT NOT NULL,
    owner_subject TEXT NOT NULL,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200)
);
-- One index serves the owner filter and the cursor: an owner's rows in id order.
CREATE INDEX "notes_owner_id" ON "notes" (owner_issuer, owner_subject, id);
