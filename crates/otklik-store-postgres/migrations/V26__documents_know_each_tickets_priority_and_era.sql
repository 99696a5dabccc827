-- Each search document carries two more terms the text can never produce (upper-case, see
-- `visibility_terms.rs`):
-- * `P` + the ticket's priority, for searches filtered by a rare priority, as `S` serves a rare
--   status (V25): a supervisor's «r» among urgent tickets took 170 ms at a million tickets;
-- * `E` + the ticket's number divided by 16384, its era: a search asks the index for the
--   matches of the newest eras first, and fetches only those, where it fetched every match of
--   the words and sorted them (4,300 for an agent's «refunding» at a million tickets).
-- Kept by the unit that changes a ticket's priority (`derived::Pending::ticket_updated`) and by
-- `otklik reindex`; a number never changes.
UPDATE ticket_documents d
SET document = d.document || array_to_tsvector(ARRAY['P' || upper(t.priority), 'E' || (t.number / 16384)])
FROM tickets t WHERE t.id = d.ticket_id;
-- The update left every document's new version wherever there was room, out of ticket order;
-- searches read documents newest first, so the table is written again in ticket order.
CLUSTER ticket_documents USING ticket_documents_pkey;
ANALYZE ticket_documents;
