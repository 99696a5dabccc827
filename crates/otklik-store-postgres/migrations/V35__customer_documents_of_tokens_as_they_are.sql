-- A customer's search document holds the analyser's tokens as they are, as a ticket's does
-- (`array_to_tsvector`), no longer PostgreSQL's parse of them (`to_tsvector('simple', …)`). The
-- parser splits some tokens again («1e5x» is the number «1e5» and the word «x» to it), so a
-- search for «x» found a customer here that SQLite, which indexes the tokens whole, does not
-- find. Searches name the tokens as they are (`…::tsquery`).
ALTER TABLE customer_search DROP COLUMN document;
ALTER TABLE customer_search ADD COLUMN document TSVECTOR GENERATED ALWAYS AS (
    array_to_tsvector(array_remove(string_to_array(terms, ' '), ''))
) STORED;
CREATE INDEX customer_search_document ON customer_search USING GIN (document);
-- The finer statistics of V18.
ALTER TABLE customer_search ALTER COLUMN document SET STATISTICS 1000;
ANALYZE customer_search;
