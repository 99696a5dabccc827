-- Live chat: the shop's chat sites, their visitors and visitors' sign-in tokens, the chat of a
-- ticket of channel `chat` with its numbered entries, and each agent's chat availability and
-- load. Same logical schema as the SQLite migration of this name (V6 belongs to another change
-- that is not merged yet; numbers only need to increase).
--
-- Lists (allowed origins, languages) and working hours are JSONB: they are always read and
-- written whole, never queried by their parts. Unique constraints are named for the port's
-- stable conflict names (see error.rs).

CREATE TABLE chat_sites (
    id                     UUID PRIMARY KEY NOT NULL,
    name                   TEXT NOT NULL,
    allowed_origins        JSONB NOT NULL,
    greeting               TEXT NOT NULL,
    accent_colour          TEXT NOT NULL,
    working_hours          JSONB NOT NULL,
    pre_chat_name          TEXT NOT NULL,
    pre_chat_email         TEXT NOT NULL,
    pre_chat_order_number  TEXT NOT NULL,
    -- Kept readable: it verifies the HMAC of the shop's signed customer ids.
    identity_secret        TEXT NOT NULL,
    require_identity       BOOLEAN NOT NULL,
    team_id                UUID REFERENCES teams (id) ON DELETE SET NULL,
    mailbox_id             UUID REFERENCES mailboxes (id),
    active                 BOOLEAN NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    version                BIGINT NOT NULL
);

-- A verified external id names one visitor per site. NULLs are distinct in a UNIQUE
-- constraint on both backends, so any number of anonymous visitors fit.
CREATE TABLE visitors (
    id                    UUID PRIMARY KEY NOT NULL,
    site_id               UUID NOT NULL REFERENCES chat_sites (id),
    customer_id           UUID NOT NULL REFERENCES customers (id),
    verified_external_id  TEXT,
    created_at            BIGINT NOT NULL,
    CONSTRAINT visitors_external_id_key UNIQUE (site_id, verified_external_id)
);
CREATE INDEX visitors_by_customer ON visitors (customer_id);

-- Only the SHA-256 of a visitor's token is stored; the widget holds the secret.
CREATE TABLE visitor_tokens (
    token_hash  BYTEA PRIMARY KEY NOT NULL,
    visitor_id  UUID NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX visitor_tokens_by_visitor ON visitor_tokens (visitor_id);

-- One chat per ticket. The queue is read in (queued_at, ticket_id) order, so each index that
-- serves a list ends in that order.
CREATE TABLE chats (
    ticket_id                 UUID PRIMARY KEY NOT NULL REFERENCES tickets (id),
    site_id                   UUID NOT NULL REFERENCES chat_sites (id),
    visitor_id                UUID NOT NULL REFERENCES visitors (id),
    state                     TEXT NOT NULL,
    agent_id                  UUID REFERENCES agents (id),
    team_id                   UUID REFERENCES teams (id) ON DELETE SET NULL,
    language                  TEXT,
    queued_at                 BIGINT NOT NULL,
    accepted_at               BIGINT,
    ended_at                  BIGINT,
    first_visitor_message_at  BIGINT,
    first_agent_message_at    BIGINT,
    last_seq                  BIGINT NOT NULL,
    visitor_read_seq          BIGINT NOT NULL,
    agent_read_seq            BIGINT NOT NULL,
    version                   BIGINT NOT NULL
);
CREATE INDEX chats_queue ON chats (state, queued_at, ticket_id);
CREATE INDEX chats_by_visitor ON chats (visitor_id, queued_at, ticket_id);
CREATE INDEX chats_by_agent ON chats (agent_id, state, queued_at, ticket_id);

-- What the visitor's widget shows, numbered 1, 2, 3… per chat: a public message of the ticket
-- or an event of the chat (exactly one of the two). The primary key refuses a number taken
-- twice; the unique client id refuses a message the widget resent (NULL for agents' messages
-- and events, and NULLs are distinct).
CREATE TABLE chat_entries (
    ticket_id         UUID NOT NULL REFERENCES chats (ticket_id),
    seq               BIGINT NOT NULL,
    message_id        UUID REFERENCES messages (id),
    event_code        TEXT,
    event_agent_name  TEXT,
    client_id         TEXT,
    created_at        BIGINT NOT NULL,
    CONSTRAINT chat_entries_pkey PRIMARY KEY (ticket_id, seq),
    CONSTRAINT chat_entries_client_id_key UNIQUE (ticket_id, client_id),
    CHECK ((message_id IS NULL) <> (event_code IS NULL))
);

-- active_chats is maintained by the store (reserve +1, release -1, never below 0). A
-- reservation is one conditional UPDATE whose row lock serialises concurrent reservations at
-- READ COMMITTED (the waiting one re-checks the condition on the new row), so no agent ever
-- gets more than max_chats.
CREATE TABLE agent_chat_status (
    agent_id          UUID PRIMARY KEY NOT NULL REFERENCES agents (id),
    availability      TEXT NOT NULL,
    max_chats         BIGINT NOT NULL,
    active_chats      BIGINT NOT NULL,
    languages         JSONB NOT NULL,
    last_assigned_at  BIGINT,
    updated_at        BIGINT NOT NULL
);
