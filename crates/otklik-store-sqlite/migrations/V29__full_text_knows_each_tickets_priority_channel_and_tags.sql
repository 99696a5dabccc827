-- The ticket's priority, channel and tags join its access terms (V22, V24) as `_p<priority>`,
-- `_c<channel>` and `_g<tag id in hex>`, so a search filtered by them asks FTS5 for
-- `(words) AND ("_p…") AND ("_c…") AND ("_g…")`: FTS5 steps through the doclists together
-- instead of handing SQL every match of the words to test. Tested in SQL match by match, «r»
-- among the tickets tagged «доставка» (none: «r» is an English token) tried all 155,000
-- matches of «r» (215 ms at a million tickets), and «1» among low-priority tickets 104 ms. The
-- filters stay tested in SQL; the terms only spare the tries. PostgreSQL did the same in V26
-- and V27.
--
-- A change of priority or channel rewrites the terms (the trigger below), as a change of team,
-- assignee or status does; a change of a ticket's tags rewrites them from the store
-- (`write.rs`, after the tags are written). A deleted tag's term stays until the entry is
-- next written: no filter can name a deleted tag. The full-text index is rebuilt (about half a
-- minute per million tickets).
DROP TRIGGER ticket_search_inserted;
DROP TRIGGER ticket_search_deleted;
DROP TRIGGER ticket_search_updated;
DROP TRIGGER ticket_access_terms_updated;

-- A row without its ticket (none should exist) gets no terms, as in V22.
UPDATE ticket_search SET access_terms = coalesce((
    SELECT CASE WHEN t.team_id IS NULL THEN '_tnone' ELSE '_t' || lower(hex(t.team_id)) END
        || CASE WHEN t.assignee_id IS NULL THEN '' ELSE ' _a' || lower(hex(t.assignee_id)) END
        || ' _s' || t.status || ' _p' || t.priority || ' _c' || t.channel
        || coalesce((SELECT group_concat(' _g' || lower(hex(tt.tag_id)), '')
                     FROM ticket_tags tt WHERE tt.ticket_id = t.id), '')
    FROM tickets t WHERE t.id = ticket_search.ticket_id), '');

CREATE TRIGGER ticket_access_terms_updated
AFTER UPDATE OF team_id, assignee_id, status, priority, channel ON tickets
WHEN old.team_id IS NOT new.team_id OR old.assignee_id IS NOT new.assignee_id
    OR old.status IS NOT new.status OR old.priority IS NOT new.priority
    OR old.channel IS NOT new.channel BEGIN
    UPDATE ticket_search SET access_terms =
        CASE WHEN new.team_id IS NULL THEN '_tnone' ELSE '_t' || lower(hex(new.team_id)) END
        || CASE WHEN new.assignee_id IS NULL THEN '' ELSE ' _a' || lower(hex(new.assignee_id)) END
        || ' _s' || new.status || ' _p' || new.priority || ' _c' || new.channel
        || coalesce((SELECT group_concat(' _g' || lower(hex(tt.tag_id)), '')
                     FROM ticket_tags tt WHERE tt.ticket_id = new.id), '')
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
