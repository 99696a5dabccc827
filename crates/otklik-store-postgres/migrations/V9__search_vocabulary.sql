-- The search vocabulary: every token of the ticket index, by length, so search-as-you-type can
-- turn a prefix into its shortest few tokens and match those exactly, the same way as on
-- SQLite (see the SQLite migration of the same number). Terms compare in code-point order
-- ("C"), as Rust and SQLite compare them, so a prefix is one index range per length. Written
-- by the store with the index (only new tokens, in sorted order), never shrunk.
CREATE TABLE search_terms (
    chars  INTEGER NOT NULL,
    term   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (chars, term)
);

INSERT INTO search_terms (chars, term)
SELECT DISTINCT char_length(lexeme), lexeme FROM ticket_search, unnest(document);
