-- A document whose team has no code is spelled '~x' instead of V32's '~0', which is no team's:
-- an agent's rounds name '~0' for the tickets without a team that they may see, and may leave
-- out their terms of who may see a ticket when the spelling implies them. No document is
-- spelled so (every team gets a code when it is created), so none is written again.
CREATE OR REPLACE FUNCTION era_words(document tsvector) RETURNS tsvector
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lexemes text[] := tsvector_to_array(document);
    lexeme text;
    era text := '0';
    team text := '0';
    suffix text;
    spelled text[] := '{}';
BEGIN
    FOREACH lexeme IN ARRAY lexemes LOOP
        IF ascii(lexeme) = 69 AND lexeme ~ '^E[0-9]+$' THEN
            era := substr(lexeme, 2);
        ELSIF ascii(lexeme) = 84 AND lexeme ~ '^T[0-9A-F]{32}$' THEN
            SELECT coalesce(max(s.code)::text, 'x') INTO team
            FROM team_search_codes s WHERE s.team_id = substr(lexeme, 2)::uuid;
        END IF;
    END LOOP;
    suffix := '~' || era || '~' || team;
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
