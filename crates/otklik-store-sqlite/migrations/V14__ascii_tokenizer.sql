-- Both full-text indexes switch to FTS5's `ascii` tokenizer. What they index is already tokens of
-- the Rust analyser (`otklik-search`), each `[a-z0-9а-я]+`, separated by spaces, and queries are
-- built from the same tokens: `ascii` splits them exactly as `unicode61` did (it keeps every
-- non-ASCII byte inside a token and ends tokens at ASCII separators), without `unicode61`'s
-- per-character category and case-folding lookups, which were about 40% of indexing a ticket.
-- Both indexes are rebuilt here from their terms tables (seconds per million tickets).
DROP TRIGGER ticket_search_inserted;
DROP TRIGGER ticket_search_deleted;
DROP TRIGGER ticket_search_updated;
DROP TABLE ticket_fts;

CREATE VIRTUAL TABLE ticket_fts USING fts5 (
    subject_terms, body_terms,
    content = 'ticket_search', content_rowid = 'rowid',
    tokenize = 'ascii',
    detail = 'none'
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

INSERT INTO ticket_fts (ticket_fts) VALUES ('rebuild');

DROP TRIGGER customer_search_inserted;
DROP TRIGGER customer_search_deleted;
DROP TRIGGER customer_search_updated;
DROP TABLE customer_fts;

CREATE VIRTUAL TABLE customer_fts USING fts5 (
    terms,
    content = 'customer_search', content_rowid = 'rowid',
    tokenize = 'ascii'
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

INSERT INTO customer_fts (customer_fts) VALUES ('rebuild');
