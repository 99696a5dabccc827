-- The first schema of Otklik: staff, customers, tickets, messages, audit, credentials.
--
-- Conventions shared with the SQLite migration of the same name (a test compares the two
-- logical schemas): ids are UUIDv7 stored as UUID (time-ordered, so B-tree inserts stay at the
-- right edge); hashes are BYTEA; times are BIGINT microseconds since the Unix epoch (UTC), not
-- TIMESTAMPTZ, so both backends store and compare the same integers; `version` columns carry
-- optimistic concurrency; enums are TEXT holding the domain's stable names.
--
-- Unique constraints are named explicitly because the store maps their names to the stable
-- conflict names of the port (`agents.email`, `tags.name`, …); PostgreSQL's generated names
-- would work too, but a rename in a later migration must not silently change an API error.

CREATE TABLE teams (
    id          UUID PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL CONSTRAINT teams_name_key UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE agents (
    id            UUID PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL CONSTRAINT agents_email_key UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    active        BOOLEAN NOT NULL,
    -- argon2id PHC string; NULL for agents who only use API tokens or have not set one yet.
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL
);

CREATE TABLE agent_teams (
    agent_id  UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    team_id   UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, team_id)
);
CREATE INDEX agent_teams_by_team ON agent_teams (team_id);

CREATE TABLE customers (
    id           UUID PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    language     TEXT,
    merged_into  UUID REFERENCES customers (id),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL
);

-- An identity (kind, provider, value) belongs to exactly one customer: the unique key is what
-- stops two customers from both "owning" one e-mail address.
CREATE TABLE customer_identities (
    id           UUID PRIMARY KEY NOT NULL,
    customer_id  UUID NOT NULL REFERENCES customers (id),
    kind         TEXT NOT NULL,
    provider     TEXT NOT NULL,
    value        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT customer_identities_value_key UNIQUE (kind, provider, value)
);
CREATE INDEX customer_identities_by_customer ON customer_identities (customer_id);

-- What a merge moved, so it can be explained and undone exactly (JSON arrays of ids).
CREATE TABLE customer_merges (
    id                  UUID PRIMARY KEY NOT NULL,
    source_id           UUID NOT NULL REFERENCES customers (id),
    target_id           UUID NOT NULL REFERENCES customers (id),
    moved_identity_ids  JSONB NOT NULL,
    moved_ticket_ids    JSONB NOT NULL,
    merged_by           UUID REFERENCES agents (id),
    merged_at           BIGINT NOT NULL,
    undone_at           BIGINT
);
CREATE INDEX customer_merges_by_source ON customer_merges (source_id);
CREATE INDEX customer_merges_by_target ON customer_merges (target_id);

-- The human ticket number. A sequence rather than a counter row: concurrent transactions take
-- numbers without queueing on one row lock. The price is that a rolled-back insert leaves a gap,
-- which is harmless (numbers are unique and increasing, not dense).
CREATE SEQUENCE ticket_number_seq AS BIGINT START WITH 1;

CREATE TABLE tickets (
    id                    UUID PRIMARY KEY NOT NULL,
    number                BIGINT NOT NULL DEFAULT nextval('ticket_number_seq')
                          CONSTRAINT tickets_number_key UNIQUE,
    subject               TEXT NOT NULL,
    status                TEXT NOT NULL,
    priority              TEXT NOT NULL,
    channel               TEXT NOT NULL,
    customer_id           UUID NOT NULL REFERENCES customers (id),
    assignee_id           UUID REFERENCES agents (id),
    team_id               UUID REFERENCES teams (id) ON DELETE SET NULL,
    merged_into           UUID REFERENCES tickets (id),
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    first_agent_reply_at  BIGINT,
    solved_at             BIGINT,
    closed_at             BIGINT,
    version               BIGINT NOT NULL
);
-- Dropping the table (or the column) drops the sequence with it.
ALTER SEQUENCE ticket_number_seq OWNED BY tickets.number;
-- Every list is ordered by (updated_at, id) descending and paged by keyset; each filter has an
-- index that ends in that order so a page is an index range scan, not a sort.
CREATE INDEX tickets_by_update ON tickets (updated_at, id);
CREATE INDEX tickets_by_status ON tickets (status, updated_at, id);
CREATE INDEX tickets_by_assignee ON tickets (assignee_id, updated_at, id);
CREATE INDEX tickets_by_team ON tickets (team_id, updated_at, id);
CREATE INDEX tickets_by_customer ON tickets (customer_id, updated_at, id);

CREATE TABLE tags (
    id          UUID PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL CONSTRAINT tags_name_key UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE ticket_tags (
    ticket_id  UUID NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    tag_id     UUID NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (ticket_id, tag_id)
);
CREATE INDEX ticket_tags_by_tag ON ticket_tags (tag_id, ticket_id);

CREATE TABLE messages (
    id           UUID PRIMARY KEY NOT NULL,
    ticket_id    UUID NOT NULL REFERENCES tickets (id),
    -- 'agent' | 'customer' | 'system'; author_id is NULL for system messages.
    author_kind  TEXT NOT NULL,
    author_id    UUID,
    visibility   TEXT NOT NULL,
    channel      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX messages_by_ticket ON messages (ticket_id, created_at, id);

-- Metadata only: the bytes live in the blob store under their SHA-256.
CREATE TABLE attachments (
    id            UUID PRIMARY KEY NOT NULL,
    ticket_id     UUID NOT NULL REFERENCES tickets (id),
    message_id    UUID NOT NULL REFERENCES messages (id),
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT NOT NULL
);
CREATE INDEX attachments_by_message ON attachments (message_id);

-- JSONB rather than JSON: stored parsed, so reading it back needs no re-parse and it can be
-- indexed later; key order is not preserved, which nothing relies on.
CREATE TABLE audit_events (
    id              UUID PRIMARY KEY NOT NULL,
    at              BIGINT NOT NULL,
    actor_agent_id  UUID,
    action          TEXT NOT NULL,
    object_kind     TEXT NOT NULL,
    object_id       UUID NOT NULL,
    changes         JSONB NOT NULL
);
CREATE INDEX audit_events_by_object ON audit_events (object_id, at, id);

-- Only the SHA-256 of a token is stored; the secret is shown once at creation.
CREATE TABLE api_tokens (
    id          UUID PRIMARY KEY NOT NULL,
    agent_id    UUID NOT NULL REFERENCES agents (id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    token_hash  BYTEA NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX api_tokens_by_agent ON api_tokens (agent_id);

CREATE TABLE sessions (
    id_hash     BYTEA PRIMARY KEY NOT NULL,
    agent_id    UUID NOT NULL REFERENCES agents (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_by_agent ON sessions (agent_id);

CREATE TABLE setup_tokens (
    token_hash  BYTEA PRIMARY KEY NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- Written in the same transaction as the change a POST made, so a retried request finds it.
CREATE TABLE idempotency_keys (
    principal      TEXT NOT NULL,
    key            TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    resource_kind  TEXT NOT NULL,
    resource_id    UUID NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (principal, key)
);

-- Named counters. Unused here (ticket numbers come from ticket_number_seq above); it exists so
-- both backends reach the same logical schema, and holds the same seed row as on SQLite.
CREATE TABLE counters (
    name   TEXT PRIMARY KEY NOT NULL,
    value  BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('ticket_number', 0);
