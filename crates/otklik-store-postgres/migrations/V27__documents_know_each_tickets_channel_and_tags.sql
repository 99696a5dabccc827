-- Each search document carries its ticket's channel (`C` + the channel in upper case) and its
-- tags (`G` + the tag's id in upper-case hex, which a rename keeps), terms the text can never
-- produce (see `visibility_terms.rs`). With the status, priority, team and assignee terms
-- before them, every filter but a date range, a customer and «unassigned» is then a term: the
-- search counts in its window of newest documents only the matches that pass the filter, and
-- the index intersects the filter's terms with the words. Testing a filter in SQL, match by
-- match, cost 1.5 s for a supervisor's «r» among the tickets tagged «доставка» (none: «r» is an
-- English token) and 2.4 s for «1» among low-priority tickets, at a million tickets.
-- Kept by the unit that changes a ticket's channel or tags, and by `otklik reindex`. A deleted
-- tag's term stays in its tickets' documents until they are written again: no filter can name
-- a deleted tag's id.
UPDATE ticket_documents d
SET document = d.document || array_to_tsvector(
    ARRAY['C' || upper(t.channel)]
    || ARRAY(SELECT 'G' || upper(replace(tt.tag_id::text, '-', ''))
             FROM ticket_tags tt WHERE tt.ticket_id = t.id))
FROM tickets t WHERE t.id = d.ticket_id;
ANALYZE ticket_documents;
