-- Era words (V30) spelled with the ticket's team as well: «refund» in a document of era 60 whose
-- team has the code 3 is 'refund~60~3'; without a team (or a team no longer there) '~0'.
--
-- Why: an agent's rounds asked ('refund~60' | 'refund~59' | …) & (the agent's terms), and GIN
-- stepped through every posting of «refund» in those eras, whichever team's: for an agent of
-- Delivery and VIP at a million tickets, 21,500 postings in 18 eras for 534 visible solved
-- matches, 10–14 ms. Spelled by team, the round names the agent's teams' spellings only and
-- steps through the visible postings (four eras: 1.0 → 0.24 ms of index). The agent's terms
-- stay in the query: the spelling narrows what GIN reads, the terms decide what is visible.
--
-- A small number instead of the team's id keeps the words short: GIN's keys of 100,000
-- documents grew by 44% spelled with the 32 hex digits, and its build took twice as long.
--
-- The codes live in a table of their own, like the other internals of the search index, and a
-- trigger gives each new team one.
CREATE TABLE team_search_codes (
    team_id uuid PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    code    bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT team_search_codes_code_key UNIQUE
);
INSERT INTO team_search_codes (team_id) SELECT id FROM teams ORDER BY created_at, id;

CREATE FUNCTION team_search_codes_of_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO team_search_codes (team_id) SELECT id FROM inserted_teams;
    RETURN NULL;
END
$$;
CREATE TRIGGER team_search_codes_on_insert AFTER INSERT ON teams
    REFERENCING NEW TABLE AS inserted_teams
    FOR EACH STATEMENT EXECUTE FUNCTION team_search_codes_of_inserted();

-- STABLE, not IMMUTABLE: it reads the team's code. The team term (`T` and the id in upper-case
-- hex, or `TNONE`) is the document's own, so the words follow the document wherever it is
-- written: a unit of work, a rebuild, a migration.
CREATE OR REPLACE FUNCTION era_words(document tsvector) RETURNS tsvector
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lexemes text[] := tsvector_to_array(document);
    lexeme text;
    era text := '0';
    code bigint;
    suffix text;
    spelled text[] := '{}';
BEGIN
    FOREACH lexeme IN ARRAY lexemes LOOP
        IF ascii(lexeme) = 69 AND lexeme ~ '^E[0-9]+$' THEN
            era := substr(lexeme, 2);
        ELSIF ascii(lexeme) = 84 AND lexeme ~ '^T[0-9A-F]{32}$' THEN
            SELECT s.code INTO code FROM team_search_codes s WHERE s.team_id = substr(lexeme, 2)::uuid;
        END IF;
    END LOOP;
    suffix := '~' || era || '~' || coalesce(code, 0);
    -- Upper case (65–90) starts the terms of who may see a ticket and of its fields.
    FOREACH lexeme IN ARRAY lexemes LOOP
        IF ascii(lexeme) BETWEEN 65 AND 90 THEN
            spelled := spelled || lexeme;
        ELSE
            spelled := spelled || (lexeme || suffix);
        END IF;
    END LOOP;
    RETURN array_to_tsvector(spelled);
END
$$;

-- Every document spelled again: the index built once after the rows, not row by row.
DROP INDEX ticket_era_words_words;
TRUNCATE ticket_era_words;
INSERT INTO ticket_era_words (ticket_id, merged, words)
SELECT ticket_id, merged, era_words(document) FROM ticket_documents ORDER BY ticket_id;
CREATE INDEX ticket_era_words_words ON ticket_era_words USING gin (words);
ANALYZE ticket_era_words;
