-- The ticket's status joins its access terms (V22) as `_s<status>`, so a search filtered by a
-- rare status asks FTS5 for `(words) AND ("_sopen")`, and FTS5 steps through the status's short
-- doclist with the words' instead of handing SQL every match of a common word to test: a
-- supervisor's «r» among open tickets tried 150,000 matches (75 ms) to find the few hundred
-- open ones. The status stays tested in SQL; the term only spares the tries. A change of
-- status rewrites the terms, and with them the ticket's full-text entry, as a change of team
-- or assignee does. The full-text index is rebuilt (about half a minute per million tickets).
DROP TRIGGER ticket_search_inserted;
DROP TRIGGER ticket_search_deleted;
DROP TRIGGER ticket_search_updated;
DROP TRIGGER ticket_access_terms_updated;

-- A row without its ticket (none should exist) gets no terms, as in V22.
UPDATE ticket_search SET access_terms = coalesce((
    SELECT CASE WHEN t.team_id IS NULL THEN '_tnone' ELSE '_t' || lower(hex(t.team_id)) END
        || CASE WHEN t.assignee_id IS NULL THEN '' ELSE ' _a' || lower(hex(t.assignee_id)) END
        || ' _s' || t.status
    FROM tickets t WHERE t.id = ticket_search.ticket_id), '');

CREATE TRIGGER ticket_access_terms_updated AFTER UPDATE OF team_id, assignee_id, status ON tickets
WHEN old.team_id IS NOT new.team_id OR old.assignee_id IS NOT new.assignee_id
    OR old.status IS NOT new.status BEGIN
    UPDATE ticket_search SET access_terms =
        CASE WHEN new.team_id IS NULL THEN '_tnone' ELSE '_t' || lower(hex(new.team_id)) END
        || CASE WHEN new.assignee_id IS NULL THEN '' ELSE ' _a' || lower(hex(new.assignee_id)) END
        || ' _s' || new.status
    WHERE ticket_id = new.id;
END;

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
