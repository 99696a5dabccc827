-- Finer statistics for the search document: the planner keeps the 10,000 most common tokens
-- (not 1,000) with their frequencies, so a token outside that list is estimated as rarer than
-- all of them. With the default, a rare order number or e-mail was guessed at ~0.2% of the
-- tickets, and a few of them together made the planner walk every ticket newest first
-- (a second at a million tickets) instead of reading their few matches from the index.
ALTER TABLE ticket_search ALTER COLUMN document SET STATISTICS 1000;
ANALYZE ticket_search;
