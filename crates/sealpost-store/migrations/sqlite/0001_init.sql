-- Sealpost schema v1 (SQLite). Times are Unix seconds; booleans are 0/1 integers so that
-- the same queries run on every backend.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    must_change_password INTEGER NOT NULL,
    language TEXT,
    secret_question TEXT,
    secret_answer_hash TEXT,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    failed_answers INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    created_at INTEGER NOT NULL,
    created_by TEXT,
    last_login_at INTEGER,
    last_login_ip TEXT,
    prev_login_at INTEGER,
    prev_login_ip TEXT,
    valid_until INTEGER
);
CREATE TABLE recipient_keys (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, version)
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    ip TEXT,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_principal ON sessions (principal_id);
CREATE TABLE temp_opens (
    token_hash TEXT PRIMARY KEY,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX temp_opens_expiry ON temp_opens (expires_at);
CREATE TABLE outbound_queue (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    give_up_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE INDEX outbound_queue_due ON outbound_queue (next_attempt_at);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT,
    detail TEXT,
    ip TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE TABLE message_ledger (
    envelope_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    first_opened_at INTEGER
);
CREATE INDEX message_ledger_created ON message_ledger (created_at);
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    roles TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
