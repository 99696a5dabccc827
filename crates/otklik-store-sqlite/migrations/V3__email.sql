-- The email channel: mailboxes, every e-mail received or sent (raw bytes kept as a blob), IMAP
-- cursors, and instance secrets. Same logical schema as the PostgreSQL migration of this name.

CREATE TABLE mailboxes (
    id                BLOB PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL UNIQUE,
    address           TEXT NOT NULL UNIQUE,
    -- Credentials are part of these URLs: they must be usable, so they cannot be hashed; the
    -- API and logs only ever show them redacted.
    imap_url          TEXT,
    smtp_url          TEXT,
    auto_acknowledge  BOOLEAN NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE imap_cursors (
    mailbox_id    BLOB PRIMARY KEY NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid_validity  INTEGER NOT NULL,
    last_uid      INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- The unique dedup key is what makes "the same e-mail delivered twice is one message" hold
-- even when two deliveries race on two nodes.
CREATE TABLE emails (
    id                   BLOB PRIMARY KEY NOT NULL,
    mailbox_id           BLOB NOT NULL REFERENCES mailboxes (id),
    direction            TEXT NOT NULL,
    status               TEXT NOT NULL,
    status_reason        TEXT,
    dedup_key            TEXT NOT NULL,
    message_id_header    TEXT,
    ticket_id            BLOB REFERENCES tickets (id),
    message_id           BLOB REFERENCES messages (id),
    raw_sha256           TEXT NOT NULL,
    from_address         TEXT,
    recipients           JSON NOT NULL,
    subject              TEXT NOT NULL,
    html_body            TEXT,
    folded_text          TEXT,
    automatic            BOOLEAN NOT NULL,
    -- The recipient of an automatic e-mail, so the hourly cap is an index lookup.
    automatic_recipient  TEXT,
    attempts             INTEGER NOT NULL,
    next_attempt_at      INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (direction, dedup_key)
);
CREATE INDEX emails_by_message_id_header ON emails (message_id_header);
CREATE INDEX emails_by_ticket ON emails (ticket_id, created_at);
CREATE INDEX emails_by_status ON emails (status, id);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'queued';
CREATE INDEX emails_automatic ON emails (automatic_recipient, created_at)
    WHERE automatic_recipient IS NOT NULL;

CREATE TABLE instance_secrets (
    name    TEXT PRIMARY KEY NOT NULL,
    secret  BLOB NOT NULL
);
