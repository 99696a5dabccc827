-- The email channel: mailboxes, every e-mail received or sent (raw bytes kept as a blob), IMAP
-- cursors, and instance secrets. Same logical schema as the SQLite migration of this name.

CREATE TABLE mailboxes (
    id                UUID PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL CONSTRAINT mailboxes_name_key UNIQUE,
    address           TEXT NOT NULL CONSTRAINT mailboxes_address_key UNIQUE,
    -- Credentials are part of these URLs: they must be usable, so they cannot be hashed; the
    -- API and logs only ever show them redacted.
    imap_url          TEXT,
    smtp_url          TEXT,
    auto_acknowledge  BOOLEAN NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE imap_cursors (
    mailbox_id    UUID PRIMARY KEY NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid_validity  BIGINT NOT NULL,
    last_uid      BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- The unique dedup key is what makes "the same e-mail delivered twice is one message" hold
-- even when two deliveries race on two nodes.
CREATE TABLE emails (
    id                   UUID PRIMARY KEY NOT NULL,
    mailbox_id           UUID NOT NULL REFERENCES mailboxes (id),
    direction            TEXT NOT NULL,
    status               TEXT NOT NULL,
    status_reason        TEXT,
    dedup_key            TEXT NOT NULL,
    message_id_header    TEXT,
    ticket_id            UUID REFERENCES tickets (id),
    message_id           UUID REFERENCES messages (id),
    raw_sha256           TEXT NOT NULL,
    from_address         TEXT,
    recipients           JSONB NOT NULL,
    subject              TEXT NOT NULL,
    html_body            TEXT,
    folded_text          TEXT,
    automatic            BOOLEAN NOT NULL,
    -- The recipient of an automatic e-mail, so the hourly cap is an index lookup.
    automatic_recipient  TEXT,
    attempts             BIGINT NOT NULL,
    next_attempt_at      BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    CONSTRAINT emails_dedup_key_key UNIQUE (direction, dedup_key)
);
CREATE INDEX emails_by_message_id_header ON emails (message_id_header);
CREATE INDEX emails_by_ticket ON emails (ticket_id, created_at);
CREATE INDEX emails_by_status ON emails (status, id);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'queued';
CREATE INDEX emails_automatic ON emails (automatic_recipient, created_at)
    WHERE automatic_recipient IS NOT NULL;

CREATE TABLE instance_secrets (
    name    TEXT PRIMARY KEY NOT NULL,
    secret  BYTEA NOT NULL
);
