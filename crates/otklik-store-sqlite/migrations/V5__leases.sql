-- Leases: a named job (watching a mailbox's IMAP folder) held by one node at a time, until the
-- lease expires unless renewed. Same logical schema as the PostgreSQL migration of this name.

CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
