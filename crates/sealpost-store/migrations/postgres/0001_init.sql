-- Sealpost schema v1 (PostgreSQL). Times are Unix seconds; booleans are 0/1 integers so that
-- the same queries run on every backend.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    must_change_password BIGINT NOT NULL,
    language TEXT,
    secret_question TEXT,
    secret_answer_hash TEXT,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    failed_answers BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    last_login_at BIGINT,
    last_login_ip TEXT,
    prev_login_at BIGINT,
    prev_login_ip TEXT,
    valid_until BIGINT
);
CREATE TABLE recipient_keys (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, version)
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    ip TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_principal ON sessions (principal_id);
CREATE TABLE temp_opens (
    token_hash TEXT PRIMARY KEY,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX temp_opens_expiry ON temp_opens (expires_at);
CREATE TABLE outbound_queue (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    data BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    give_up_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT
);
CREATE INDEX outbound_queue_due ON outbound_queue (next_attempt_at);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
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
    created_at BIGINT NOT NULL,
    first_opened_at BIGINT
);
CREATE INDEX message_ledger_created ON message_ledger (created_at);
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    roles TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
