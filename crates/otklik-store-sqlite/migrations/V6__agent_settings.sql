-- Agent settings, instance settings, password resets and sorted ticket lists. Same logical
-- schema as the PostgreSQL migration of this name.

-- The interface language an agent chose ('ru' or 'en'); NULL until they switch once, and then
-- the browser's Accept-Language decides.
ALTER TABLE agents ADD COLUMN locale TEXT;

-- Instance settings an admin changes at run time (name, default language, public base URL,
-- system mailbox): a handful of named text values, parsed by otklik-domain::settings.
CREATE TABLE settings (
    name        TEXT PRIMARY KEY NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Password-reset links: only the SHA-256 of the secret is kept, like sessions and set-up
-- tokens. used_at is set when the link is spent or made void by a newer request; the index
-- serves both that and the per-agent hourly rate limit.
CREATE TABLE password_reset_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    agent_id    BLOB NOT NULL REFERENCES agents (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX password_reset_tokens_by_agent ON password_reset_tokens (agent_id, created_at);

-- Sorting the inbox: like tickets_by_update, each sort order has an index that ends in
-- (key, id), alone and after status (what most views filter on), so a page of any order is a
-- range scan. Priority sorts by urgency through the same CASE the queries use (an index on an
-- expression is used only for that exact expression). Numbers are unique, so the number
-- order needs no id.
CREATE INDEX tickets_by_created ON tickets (created_at, id);
CREATE INDEX tickets_by_status_created ON tickets (status, created_at, id);
CREATE INDEX tickets_by_priority ON tickets (
    (CASE priority WHEN 'low' THEN 0 WHEN 'normal' THEN 1 WHEN 'high' THEN 2 WHEN 'urgent' THEN 3 ELSE 1 END),
    id
);
CREATE INDEX tickets_by_status_priority ON tickets (
    status,
    (CASE priority WHEN 'low' THEN 0 WHEN 'normal' THEN 1 WHEN 'high' THEN 2 WHEN 'urgent' THEN 3 ELSE 1 END),
    id
);
CREATE INDEX tickets_by_status_number ON tickets (status, number);
