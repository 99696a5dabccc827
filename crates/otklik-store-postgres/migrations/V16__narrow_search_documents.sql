-- The search document moves out of `ticket_search` into a narrow table of its own, without
-- positions or weights. A search of a common word walks the newest documents and tests each one
-- (see `read::search_tickets`); with the analysed terms beside it, a document row was about
-- 1.7 kB and the walk read a page per two matches tried. Alone and stripped it is about 0.8 kB:
-- a word in 7% of a million tickets was found in 6 ms instead of 12. Nothing reads positions or
-- weights: queries have no phrases and no weights, and tickets are ranked in Rust from the terms.
-- Whatever changes a ticket's terms writes its document next, in the same transaction
-- (`derived::write_documents`).
CREATE TABLE ticket_documents (
    ticket_id  UUID PRIMARY KEY NOT NULL REFERENCES tickets (id),
    document   TSVECTOR NOT NULL
);
INSERT INTO ticket_documents (ticket_id, document)
SELECT ticket_id, strip(to_tsvector('simple', subject_terms || ' ' || body_terms))
FROM ticket_search ORDER BY ticket_id;
-- Drops the old GIN index with the column.
ALTER TABLE ticket_search DROP COLUMN document;
CREATE INDEX ticket_documents_document ON ticket_documents USING GIN (document);
-- As V10 did for the old column: the 10,000 most common tokens, so rare ones are known as rare.
ALTER TABLE ticket_documents ALTER COLUMN document SET STATISTICS 1000;
ANALYZE ticket_documents;
