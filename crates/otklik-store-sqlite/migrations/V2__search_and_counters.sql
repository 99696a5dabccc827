-- Full-text search and maintained queue counters, both inside the primary database and written
-- in the same transaction as the data they describe.
--
-- Search: the store fills `ticket_search` / `customer_search` with terms produced by the
-- otklik-search crate (lower-cased, ё→е, Snowball stems per script, exact tokens for numbers,
-- e-mails and phones), so SQLite and PostgreSQL index the very same tokens. Here an
-- external-content FTS5 table mirrors each terms table through triggers; its rowid follows
-- insertion order, which gives the "newest first" order searches rank within.

CREATE TABLE ticket_search (
    ticket_id      BLOB PRIMARY KEY NOT NULL REFERENCES tickets (id),
    subject_terms  TEXT NOT NULL,
    body_terms     TEXT NOT NULL
);

CREATE VIRTUAL TABLE ticket_fts USING fts5 (
    subject_terms, body_terms,
    content = 'ticket_search', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER ticket_search_inserted AFTER INSERT ON ticket_search BEGIN
    INSERT INTO ticket_fts (rowid, subject_terms, body_terms)
    VALUES (new.rowid, new.subject_terms, new.body_terms);
END;
CREATE TRIGGER ticket_search_deleted AFTER DELETE ON ticket_search BEGIN
    INSERT INTO ticket_fts (ticket_fts, rowid, subject_terms, body_terms)
    VALUES ('delete', old.rowid, old.subject_terms, old.body_terms);
END;
CREATE TRIGGER ticket_search_updated AFTER UPDATE ON ticket_search BEGIN
    INSERT INTO ticket_fts (ticket_fts, rowid, subject_terms, body_terms)
    VALUES ('delete', old.rowid, old.subject_terms, old.body_terms);
    INSERT INTO ticket_fts (rowid, subject_terms, body_terms)
    VALUES (new.rowid, new.subject_terms, new.body_terms);
END;

CREATE TABLE customer_search (
    customer_id  BLOB PRIMARY KEY NOT NULL REFERENCES customers (id),
    terms        TEXT NOT NULL
);

CREATE VIRTUAL TABLE customer_fts USING fts5 (
    terms,
    content = 'customer_search', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER customer_search_inserted AFTER INSERT ON customer_search BEGIN
    INSERT INTO customer_fts (rowid, terms) VALUES (new.rowid, new.terms);
END;
CREATE TRIGGER customer_search_deleted AFTER DELETE ON customer_search BEGIN
    INSERT INTO customer_fts (customer_fts, rowid, terms) VALUES ('delete', old.rowid, old.terms);
END;
CREATE TRIGGER customer_search_updated AFTER UPDATE ON customer_search BEGIN
    INSERT INTO customer_fts (customer_fts, rowid, terms) VALUES ('delete', old.rowid, old.terms);
    INSERT INTO customer_fts (rowid, terms) VALUES (new.rowid, new.terms);
END;

-- Queue counters: how many unmerged tickets sit in each combination of the dimensions views
-- filter on. A view's count is a sum over the few rows matching its filter, never a scan of
-- tickets. `assignee_key` / `team_key` hold 16 zero bytes for "none" so they can be part of the
-- key; `day` is the UTC day (days since the epoch) of the last update for waiting work (pending,
-- on_hold) and 0 otherwise, so "pending for more than 2 days" is a sum over old days while the
-- busy queues (new, open) stay a handful of rows.
CREATE TABLE ticket_counters (
    status        TEXT NOT NULL,
    priority      TEXT NOT NULL,
    assignee_key  BLOB NOT NULL,
    team_key      BLOB NOT NULL,
    day           INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (status, priority, assignee_key, team_key, day)
);

-- Saved views: shared (no owner) or personal. `definition` is the JSON of a view filter.
CREATE TABLE views (
    id              BLOB PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    owner_agent_id  BLOB REFERENCES agents (id) ON DELETE CASCADE,
    definition      JSON NOT NULL,
    position        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX views_by_owner ON views (owner_agent_id, position);
