-- Every change to a ticket writes new versions of its rows in these tables, and every search
-- reads the newest tickets' rows first, which are the ones changed most. PostgreSQL's default
-- vacuums a table once a fifth of its rows are dead, 200,000 at a million tickets: weeks of a
-- busy shop's changes, during which searches step over the old versions and the pages they sit
-- on are not all-visible, so index-only scans of them read the table too. These tables are
-- vacuumed after 1,000 dead rows and 0.2% of the table (3,000 at a million) instead; such a
-- vacuum reads only the pages changed since the last one. Measured at a million tickets: after
-- 30,000 changes to the newest 1,000 tickets, an agent's «refunding» + solved alone went from
-- 9.1 to 11.6 ms, and back to 10.5 once vacuumed (the rest is where the changed rows now lie).
ALTER TABLE tickets SET (autovacuum_vacuum_scale_factor = 0.002, autovacuum_vacuum_threshold = 1000);
ALTER TABLE ticket_search SET (autovacuum_vacuum_scale_factor = 0.002, autovacuum_vacuum_threshold = 1000);
ALTER TABLE ticket_documents SET (autovacuum_vacuum_scale_factor = 0.002, autovacuum_vacuum_threshold = 1000);
ALTER TABLE ticket_era_words SET (autovacuum_vacuum_scale_factor = 0.002, autovacuum_vacuum_threshold = 1000);
