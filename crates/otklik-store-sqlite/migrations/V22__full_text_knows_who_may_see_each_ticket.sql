-- Who may see a ticket, as terms of its full-text entry (PostgreSQL did the same in V21): `_tnone`
-- for a ticket without a team, `_t<team id in hex>`, and `_a<assignee id in hex>`. An agent's
-- search then asks FTS5 for `(words) AND ("_tnone" OR "_a<me>" OR "_t<my team>" …)`, and FTS5
-- steps through both doclists together instead of handing every match to SQL to be tested
-- against `ticket_visibility`: a word mostly in other teams' tickets no longer costs a test per
-- hidden match. `ticket_visibility` stays the authority (every match is still tested there);
-- the terms only spare the tries.
--
-- `_` is made a token character, and the analyser's tokens are `[a-z0-9а-я]+`: no text can
-- produce one of these terms. The full-text index is rebuilt (about a minute per million
-- tickets).
DROP TRIGGER ticket_search_inserted;
DROP TRIGGER ticket_search_deleted;
DROP TRIGGER ticket_search_updated;
DROP TABLE ticket_fts;

ALTER TABLE ticket_search ADD COLUMN access_terms TEXT NOT NULL DEFAULT '';
-- A row without its ticket (none should exist) gets no terms: no agent's search finds it.
UPDATE ticket_search SET access_terms = coalesce((
    SELECT CASE WHEN t.team_id IS NULL THEN '_tnone' ELSE '_t' || lower(hex(t.team_id)) END
        || CASE WHEN t.assignee_id IS NULL THEN '' ELSE ' _a' || lower(hex(t.assignee_id)) END
    FROM tickets t WHERE t.id = ticket_search.ticket_id), '');

-- A change of team or assignee rewrites the terms, and with them the ticket's full-text entry
-- (the update trigger below); so do the changes foreign keys make (a team deleted).
CREATE TRIGGER ticket_access_terms_updated AFTER UPDATE OF team_id, assignee_id ON tickets
WHEN old.team_id IS NOT new.team_id OR old.assignee_id IS NOT new.assignee_id BEGIN
    UPDATE ticket_search SET access_terms =
        CASE WHEN new.team_id IS NULL THEN '_tnone' ELSE '_t' || lower(hex(new.team_id)) END
        || CASE WHEN new.assignee_id IS NULL THEN '' ELSE ' _a' || lower(hex(new.assignee_id)) END
    WHERE ticket_id = new.id;
END;

CREATE VIRTUAL TABLE ticket_fts USING fts5 (
    subject_terms, body_terms, access_terms,
    content = 'ticket_search', content_rowid = 'rowid',
    tokenize = "ascii tokenchars '_'",
    detail = 'none'
);

CREATE TRIGGER ticket_search_inserted AFTER INSERT ON ticket_search BEGIN
    INSERT INTO ticket_fts (rowid, subject_terms, body_terms, access_terms)
    VALUES (new.rowid, new.subject_terms, new.body_terms, new.access_terms);
END;
CREATE TRIGGER ticket_search_deleted AFTER DELETE ON ticket_search BEGIN
    INSERT INTO ticket_fts (ticket_fts, rowid, subject_terms, body_terms, access_terms)
    VALUES ('delete', old.rowid, old.subject_terms, old.body_terms, old.access_terms);
END;
CREATE TRIGGER ticket_search_updated AFTER UPDATE ON ticket_search BEGIN
    INSERT INTO ticket_fts (ticket_fts, rowid, subject_terms, body_terms, access_terms)
    VALUES ('delete', old.rowid, old.subject_terms, old.body_terms, old.access_terms);
    INSERT INTO ticket_fts (rowid, subject_terms, body_terms, access_terms)
    VALUES (new.rowid, new.subject_terms, new.body_terms, new.access_terms);
END;

INSERT INTO ticket_fts (ticket_fts) VALUES ('rebuild');
