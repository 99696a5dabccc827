-- Live chat: the shop's chat sites, their visitors and visitors' sign-in tokens, the chat of a
-- ticket of channel `chat` with its numbered entries, and each agent's chat availability and
-- load. Same logical schema as the PostgreSQL migration of this name (V6 belongs to another
-- change that is not merged yet; numbers only need to increase).
--
-- Lists (allowed origins, languages) and working hours are JSON on both backends: they are
-- always read and written whole, never queried by their parts.

CREATE TABLE chat_sites (
    id                     BLOB PRIMARY KEY NOT NULL,
    name                   TEXT NOT NULL,
    allowed_origins        JSON NOT NULL,
    greeting               TEXT NOT NULL,
    accent_colour          TEXT NOT NULL,
    working_hours          JSON NOT NULL,
    pre_chat_name          TEXT NOT NULL,
    pre_chat_email         TEXT NOT NULL,
    pre_chat_order_number  TEXT NOT NULL,
    -- Kept readable: it verifies the HMAC of the shop's signed customer ids.
    identity_secret        TEXT NOT NULL,
    require_identity       BOOLEAN NOT NULL,
    team_id                BLOB REFERENCES teams (id) ON DELETE SET NULL,
    mailbox_id             BLOB REFERENCES mailboxes (id),
    active                 BOOLEAN NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    version                INTEGER NOT NULL
);

-- A verified external id names one visitor per site. NULLs are distinct in a UNIQUE
-- constraint on both backends, so any number of anonymous visitors fit.
CREATE TABLE visitors (
    id                    BLOB PRIMARY KEY NOT NULL,
    site_id               BLOB NOT NULL REFERENCES chat_sites (id),
    customer_id           BLOB NOT NULL REFERENCES customers (id),
    verified_external_id  TEXT,
    created_at            INTEGER NOT NULL,
    UNIQUE (site_id, verified_external_id)
);
CREATE INDEX visitors_by_customer ON visitors (customer_id);

-- Only the SHA-256 of a visitor's token is stored; the widget holds the secret.
CREATE TABLE visitor_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    visitor_id  BLOB NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
CREATE INDEX visitor_tokens_by_visitor ON visitor_tokens (visitor_id);

-- One chat per ticket. The queue is read in (queued_at, ticket_id) order, so each index that
-- serves a list ends in that order.
CREATE TABLE chats (
    ticket_id                 BLOB PRIMARY KEY NOT NULL REFERENCES tickets (id),
    site_id                   BLOB NOT NULL REFERENCES chat_sites (id),
    visitor_id                BLOB NOT NULL REFERENCES visitors (id),
    state                     TEXT NOT NULL,
    agent_id                  BLOB REFERENCES agents (id),
    team_id                   BLOB REFERENCES teams (id) ON DELETE SET NULL,
    language                  TEXT,
    queued_at                 INTEGER NOT NULL,
    accepted_at               INTEGER,
    ended_at                  INTEGER,
    first_visitor_message_at  INTEGER,
    first_agent_message_at    INTEGER,
    last_seq                  INTEGER NOT NULL,
    visitor_read_seq          INTEGER NOT NULL,
    agent_read_seq            INTEGER NOT NULL,
    version                   INTEGER NOT NULL
);
CREATE INDEX chats_queue ON chats (state, queued_at, ticket_id);
CREATE INDEX chats_by_visitor ON chats (visitor_id, queued_at, ticket_id);
CREATE INDEX chats_by_agent ON chats (agent_id, state, queued_at, ticket_id);

-- What the visitor's widget shows, numbered 1, 2, 3… per chat: a public message of the ticket
-- or an event of the chat (exactly one of the two). The primary key refuses a number taken
-- twice; the unique client id refuses a message the widget resent (NULL for agents' messages
-- and events, and NULLs are distinct).
CREATE TABLE chat_entries (
    ticket_id         BLOB NOT NULL REFERENCES chats (ticket_id),
    seq               INTEGER NOT NULL,
    message_id        BLOB REFERENCES messages (id),
    event_code        TEXT,
    event_agent_name  TEXT,
    client_id         TEXT,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, seq),
    UNIQUE (ticket_id, client_id),
    CHECK ((message_id IS NULL) <> (event_code IS NULL))
);

-- active_chats is maintained by the store (reserve +1, release -1, never below 0); a
-- reservation is one conditional UPDATE, so no agent ever gets more than max_chats.
CREATE TABLE agent_chat_status (
    agent_id          BLOB PRIMARY KEY NOT NULL REFERENCES agents (id),
    availability      TEXT NOT NULL,
    max_chats         INTEGER NOT NULL,
    active_chats      INTEGER NOT NULL,
    languages         JSON NOT NULL,
    last_assigned_at  INTEGER,
    updated_at        INTEGER NOT NULL
);
