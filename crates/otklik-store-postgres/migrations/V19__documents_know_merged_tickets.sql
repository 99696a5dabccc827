-- Each search document says whether its ticket was merged into another, as `tickets.merged_into`
-- does. A search without filters, by someone who sees every ticket, then finds its newest
-- matches in `ticket_documents` alone: before, it merged `tickets` alongside the walk to skip
-- merged tickets, and read a ticket for every document it tried (~8,800 for a word in 7% of a
-- million tickets, to keep 500), which was a third of the statement. Kept by the derived writes
-- in the transaction that merges or unmerges the ticket (`derived::Pending::flush`).
ALTER TABLE ticket_documents ADD COLUMN merged BOOLEAN NOT NULL DEFAULT false;
UPDATE ticket_documents d SET merged = true
FROM tickets t WHERE t.id = d.ticket_id AND t.merged_into IS NOT NULL;
