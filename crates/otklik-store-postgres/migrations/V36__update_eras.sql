-- An upper date bound is no term of the search documents, so a search with one starts at the
-- newest ticket that may pass it, and finds where that is here, in a few rows: for each era of
-- ticket numbers (16,384 tickets, as the documents' `E` terms), the earliest update time any of
-- its tickets has had and its newest ticket id. Every ticket updated before a date lies in an
-- era whose earliest update is before the date, at or below that era's newest id. Kept as
-- tickets are created, and whenever an update moves a ticket's time back (another node's clock
-- behind); earliest times only ever go down and newest ids up, so a deleted ticket leaves a
-- bound that is only looser. Reading the tickets' own entries instead took up to 70 ms at a
-- million tickets for a date in the middle of their year.
CREATE TABLE ticket_update_eras (
    era bigint PRIMARY KEY,
    earliest_update bigint NOT NULL,
    newest_id uuid NOT NULL
);

INSERT INTO ticket_update_eras (era, earliest_update, newest_id)
SELECT number / 16384, min(updated_at), (array_agg(id ORDER BY id DESC))[1]
FROM tickets
GROUP BY number / 16384;
