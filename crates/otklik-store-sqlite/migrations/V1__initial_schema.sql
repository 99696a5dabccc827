-- The first schema of Otklik: staff, customers, tickets, messages, audit, credentials.
--
-- Conventions shared with the PostgreSQL migration of the same name (a test compares the two):
-- ids are UUIDv7 stored as 16-byte BLOBs (time-ordered, so B-tree inserts stay at the right
-- edge); times are INTEGER microseconds since the Unix epoch (UTC); `version` columns carry
-- optimistic concurrency; enums are TEXT holding the domain's stable names.

CREATE TABLE teams (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE agents (
    id            BLOB PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    -- Declared BOOLEAN so the logical-schema check reads "bool" on both backends.
    active        BOOLEAN NOT NULL,
    -- argon2id PHC string; NULL for agents who only use API tokens or have not set one yet.
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL
);

CREATE TABLE agent_teams (
    agent_id  BLOB NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    team_id   BLOB NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, team_id)
);
CREATE INDEX agent_teams_by_team ON agent_teams (team_id);

CREATE TABLE customers (
    id           BLOB PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    language     TEXT,
    merged_into  BLOB REFERENCES customers (id),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL
);

-- An identity (kind, provider, value) belongs to exactly one customer: the unique key is what
-- stops two customers from both "owning" one e-mail address.
CREATE TABLE customer_identities (
    id           BLOB PRIMARY KEY NOT NULL,
    customer_id  BLOB NOT NULL REFERENCES customers (id),
    kind         TEXT NOT NULL,
    provider     TEXT NOT NULL,
    value        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (kind, provider, value)
);
CREATE INDEX customer_identities_by_customer ON customer_identities (customer_id);

-- What a merge moved, so it can be explained and undone exactly (JSON arrays of hex ids).
CREATE TABLE customer_merges (
    id                  BLOB PRIMARY KEY NOT NULL,
    source_id           BLOB NOT NULL REFERENCES customers (id),
    target_id           BLOB NOT NULL REFERENCES customers (id),
    moved_identity_ids  JSON NOT NULL,
    moved_ticket_ids    JSON NOT NULL,
    merged_by           BLOB REFERENCES agents (id),
    merged_at           INTEGER NOT NULL,
    undone_at           INTEGER
);
CREATE INDEX customer_merges_by_source ON customer_merges (source_id);
CREATE INDEX customer_merges_by_target ON customer_merges (target_id);

CREATE TABLE tickets (
    id                    BLOB PRIMARY KEY NOT NULL,
    -- The human number; SQLite has one writer, so a counter row hands them out gap-free.
    number                INTEGER NOT NULL UNIQUE,
    subject               TEXT NOT NULL,
    status                TEXT NOT NULL,
    priority              TEXT NOT NULL,
    channel               TEXT NOT NULL,
    customer_id           BLOB NOT NULL REFERENCES customers (id),
    assignee_id           BLOB REFERENCES agents (id),
    team_id               BLOB REFERENCES teams (id) ON DELETE SET NULL,
    merged_into           BLOB REFERENCES tickets (id),
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    first_agent_reply_at  INTEGER,
    solved_at             INTEGER,
    closed_at             INTEGER,
    version               INTEGER NOT NULL
);
-- Every list is ordered by (updated_at, id) descending and paged by keyset; each filter has an
-- index that ends in that order so a page is an index range scan, not a sort.
CREATE INDEX tickets_by_update ON tickets (updated_at, id);
CREATE INDEX tickets_by_status ON tickets (status, updated_at, id);
CREATE INDEX tickets_by_assignee ON tickets (assignee_id, updated_at, id);
CREATE INDEX tickets_by_team ON tickets (team_id, updated_at, id);
CREATE INDEX tickets_by_customer ON tickets (customer_id, updated_at, id);

CREATE TABLE tags (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE ticket_tags (
    ticket_id  BLOB NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    tag_id     BLOB NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (ticket_id, tag_id)
);
CREATE INDEX ticket_tags_by_tag ON ticket_tags (tag_id, ticket_id);

CREATE TABLE messages (
    id           BLOB PRIMARY KEY NOT NULL,
    ticket_id    BLOB NOT NULL REFERENCES tickets (id),
    -- 'agent' | 'customer' | 'system'; author_id is NULL for system messages.
    author_kind  TEXT NOT NULL,
    author_id    BLOB,
    visibility   TEXT NOT NULL,
    channel      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX messages_by_ticket ON messages (ticket_id, created_at, id);

-- Metadata only: the bytes live in the blob store under their SHA-256.
CREATE TABLE attachments (
    id            BLOB PRIMARY KEY NOT NULL,
    ticket_id     BLOB NOT NULL REFERENCES tickets (id),
    message_id    BLOB NOT NULL REFERENCES messages (id),
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT NOT NULL
);
CREATE INDEX attachments_by_message ON attachments (message_id);

CREATE TABLE audit_events (
    id              BLOB PRIMARY KEY NOT NULL,
    at              INTEGER NOT NULL,
    actor_agent_id  BLOB,
    action          TEXT NOT NULL,
    object_kind     TEXT NOT NULL,
    object_id       BLOB NOT NULL,
    changes         JSON NOT NULL
);
CREATE INDEX audit_events_by_object ON audit_events (object_id, at, id);

-- Only the SHA-256 of a token is stored; the secret is shown once at creation.
CREATE TABLE api_tokens (
    id          BLOB PRIMARY KEY NOT NULL,
    agent_id    BLOB NOT NULL REFERENCES agents (id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX api_tokens_by_agent ON api_tokens (agent_id);

CREATE TABLE sessions (
    id_hash     BLOB PRIMARY KEY NOT NULL,
    agent_id    BLOB NOT NULL REFERENCES agents (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_by_agent ON sessions (agent_id);

CREATE TABLE setup_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

-- Written in the same transaction as the change a POST made, so a retried request finds it.
CREATE TABLE idempotency_keys (
    principal      TEXT NOT NULL,
    key            TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    resource_kind  TEXT NOT NULL,
    resource_id    BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (principal, key)
);

-- Named counters (the ticket number). PostgreSQL uses a sequence instead, so concurrent
-- transactions do not queue on one row; the table exists there too for parity.
CREATE TABLE counters (
    name   TEXT PRIMARY KEY NOT NULL,
    value  INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('ticket_number', 0);
