-- Full-text search and maintained queue counters, both inside the primary database and written
-- in the same transaction as the data they describe.
--
-- Search: the store fills `ticket_search` / `customer_search` with terms produced by the
-- otklik-search crate (lower-cased, ё→е, Snowball stems per script, exact tokens for numbers,
-- e-mails and phones), so SQLite and PostgreSQL index the very same tokens. Here a generated
-- tsvector over the 'simple' configuration (no further processing) carries a GIN index; the
-- subject weighs more than the messages (A vs B).

CREATE TABLE ticket_search (
    ticket_id      UUID PRIMARY KEY NOT NULL REFERENCES tickets (id),
    subject_terms  TEXT NOT NULL,
    body_terms     TEXT NOT NULL,
    document       TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', subject_terms), 'A')
        || setweight(to_tsvector('simple', body_terms), 'B')
    ) STORED
);
CREATE INDEX ticket_search_document ON ticket_search USING GIN (document);

CREATE TABLE customer_search (
    customer_id  UUID PRIMARY KEY NOT NULL REFERENCES customers (id),
    terms        TEXT NOT NULL,
    document     TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', terms)) STORED
);
CREATE INDEX customer_search_document ON customer_search USING GIN (document);

-- Queue counters: how many unmerged tickets sit in each combination of the dimensions views
-- filter on. A view's count is a sum over the few rows matching its filter, never a scan of
-- tickets. `assignee_key` / `team_key` hold the nil UUID for "none" so they can be part of the
-- key; `day` is the UTC day (days since the epoch) of the last update for waiting work (pending,
-- on_hold) and 0 otherwise, so "pending for more than 2 days" is a sum over old days while the
-- busy queues (new, open) stay a handful of rows.
CREATE TABLE ticket_counters (
    status        TEXT NOT NULL,
    priority      TEXT NOT NULL,
    assignee_key  UUID NOT NULL,
    team_key      UUID NOT NULL,
    day           BIGINT NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (status, priority, assignee_key, team_key, day)
);

-- Saved views: shared (no owner) or personal. `definition` is the JSON of a view filter.
CREATE TABLE views (
    id              UUID PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    owner_agent_id  UUID REFERENCES agents (id) ON DELETE CASCADE,
    definition      JSONB NOT NULL,
    position        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX views_by_owner ON views (owner_agent_id, position);
