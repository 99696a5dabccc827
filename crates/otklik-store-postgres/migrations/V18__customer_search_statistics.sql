-- Finer statistics for the customers' search document, as V10 and V16 gave the tickets' ones.
-- With the default, the planner guessed any token outside its 234 most common ones (an e-mail,
-- a phone number, a rare surname) at ~0.4% of the customers, and chose to walk every customer
-- newest first to merge them with the few matches: 40–70 ms at 350k customers for an e-mail
-- that one customer has, against 0.1 ms when it reads the matches from the index and looks
-- their customers up.
ALTER TABLE customer_search ALTER COLUMN document SET STATISTICS 1000;
ANALYZE customer_search;
