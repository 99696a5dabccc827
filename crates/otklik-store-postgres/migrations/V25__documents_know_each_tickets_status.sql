-- Each search document carries its ticket's status as a term the text can never produce
-- (upper-case, see `visibility_terms.rs`): `S` + the status. A search filtered by a rare status
-- then asks the GIN index for `word & (its status terms)` and gets only the matches in that
-- status, instead of walking or fetching every match of a common word: a supervisor's «r» among
-- open tickets took 300 ms at a million tickets. Kept by the unit that changes a ticket's
-- status (`derived::Pending::ticket_updated`) and by `otklik reindex`. SQLite does the same for
-- its full-text index in V24; PostgreSQL's V24 had been released as a no-op, so it comes here.
UPDATE ticket_documents d
SET document = d.document || array_to_tsvector(ARRAY['S' || upper(t.status)])
FROM tickets t WHERE t.id = d.ticket_id;
ANALYZE ticket_documents;
