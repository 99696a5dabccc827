-- The status joins the narrow copy of what a search tests of each ticket (V20). A search
-- filtered by status, team or assignee tests its matches here instead of in `tickets`, whose
-- rows are five times wider: an agent of Delivery searching «refunding» among solved tickets
-- tries thousands of matches, and their lookups were half of that search's time. Rewrites the
-- narrow table once (a few seconds per million tickets).
ALTER TABLE ticket_visibility ADD COLUMN status TEXT NOT NULL DEFAULT '';
UPDATE ticket_visibility
SET status = (SELECT t.status FROM tickets t WHERE t.rowid = ticket_visibility.ticket_rowid);

DROP TRIGGER ticket_visibility_inserted;
DROP TRIGGER ticket_visibility_updated;
CREATE TRIGGER ticket_visibility_inserted AFTER INSERT ON tickets BEGIN
    INSERT INTO ticket_visibility (ticket_rowid, id, team_id, assignee_id, merged_into, status)
    VALUES (new.rowid, new.id, new.team_id, new.assignee_id, new.merged_into, new.status);
END;
CREATE TRIGGER ticket_visibility_updated AFTER UPDATE OF team_id, assignee_id, merged_into, status
ON tickets BEGIN
    UPDATE ticket_visibility
    SET team_id = new.team_id, assignee_id = new.assignee_id, merged_into = new.merged_into,
        status = new.status
    WHERE ticket_rowid = new.rowid;
END;
