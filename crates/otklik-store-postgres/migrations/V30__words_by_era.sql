-- Each ticket's search words again, each spelled with its era (V26): «refund» in a document of
-- era 60 is 'refund~60'. The terms of who may see a ticket and of its fields stay as they are.
--
-- Why: GIN answers an AND by stepping through the postings of its rarest terms. Asked for an
-- agent's «refunding» in two eras ('refund' & (teams) & ('E60' | 'E59')), the rarest terms were
-- the eras, so it stepped through all 32,768 of their tickets to find ~150 matches (4–13 ms a
-- round). Asked for ('refund~60' | 'refund~59') & (teams), it steps through the 2,400 tickets of
-- those eras that mention refunds (1–3 ms).
--
-- A table of its own, so the documents that searches walk stay as narrow as they were. A
-- trigger keeps it from the documents in the statement that writes them: whatever writes a
-- document (a unit of work, a rebuild, a migration) writes its era's words with it.

-- A document's words spelled with its era; its other terms (upper case: T…, A…, S…, E…) as
-- they are. Word tokens never hold upper case (`otklik_search`: a–z, 0–9, а–я).
CREATE FUNCTION era_words(document tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_tsvector(ARRAY(
        SELECT CASE WHEN u.lexeme ~ '^[A-Z]' THEN u.lexeme ELSE u.lexeme || '~' || e.era END
        FROM unnest(document) u,
             (SELECT coalesce(max(substr(lexeme, 2)), '0') AS era
              FROM unnest(document) WHERE lexeme ~ '^E[0-9]+$') e))
$$;

CREATE TABLE ticket_era_words (
    ticket_id uuid PRIMARY KEY REFERENCES ticket_documents (ticket_id) ON DELETE CASCADE,
    merged    boolean NOT NULL,
    words     tsvector NOT NULL
);

-- One statement for all the documents a statement wrote: a unit of work writes hundreds.
CREATE FUNCTION ticket_era_words_of_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_era_words (ticket_id, merged, words)
    SELECT n.ticket_id, n.merged, era_words(n.document) FROM inserted_documents n
    ON CONFLICT (ticket_id) DO UPDATE SET merged = excluded.merged, words = excluded.words;
    RETURN NULL;
END
$$;

-- Only the documents that changed: writing a ticket's document again after any change of the
-- ticket often writes the same document.
CREATE FUNCTION ticket_era_words_of_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_era_words (ticket_id, merged, words)
    SELECT n.ticket_id, n.merged, era_words(n.document)
    FROM updated_documents n JOIN documents_before o ON o.ticket_id = n.ticket_id
    WHERE n.document <> o.document OR n.merged <> o.merged
    ON CONFLICT (ticket_id) DO UPDATE SET merged = excluded.merged, words = excluded.words;
    RETURN NULL;
END
$$;

CREATE TRIGGER ticket_era_words_on_insert AFTER INSERT ON ticket_documents
    REFERENCING NEW TABLE AS inserted_documents
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_era_words_of_inserted();
CREATE TRIGGER ticket_era_words_on_update AFTER UPDATE ON ticket_documents
    REFERENCING OLD TABLE AS documents_before NEW TABLE AS updated_documents
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_era_words_of_updated();

INSERT INTO ticket_era_words (ticket_id, merged, words)
SELECT ticket_id, merged, era_words(document) FROM ticket_documents ORDER BY ticket_id;

CREATE INDEX ticket_era_words_words ON ticket_era_words USING gin (words);
ANALYZE ticket_era_words;
