-- Each search document carries who may see its ticket, as terms the text can never produce
-- (upper-case; see `visibility_terms.rs`): `TNONE` or `T` + the team's id, and `A` + the
-- assignee's id. An agent's search then asks the GIN index for `word & (their terms)` and gets
-- only the matches they may open, instead of testing the ticket of every match it tries: an
-- agent of Delivery and VIP searching a word mostly in other teams' tickets tried ~120,000
-- documents of a million. Kept by the unit that changes a ticket's team or assignee
-- (`derived::Pending::flush`) and by `otklik reindex`.
UPDATE ticket_documents d
SET document = d.document || array_to_tsvector(array_remove(ARRAY[
    'T' || coalesce(upper(replace(t.team_id::text, '-', '')), 'NONE'),
    'A' || upper(replace(t.assignee_id::text, '-', ''))], NULL))
FROM tickets t WHERE t.id = d.ticket_id;
ANALYZE ticket_documents;
