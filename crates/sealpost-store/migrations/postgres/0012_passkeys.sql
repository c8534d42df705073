-- Sealpost schema v12 (PostgreSQL): recipient passkeys (WebAuthn, issue 15).
-- One row per registered credential. credential_key is the SHA-256 (hex) of the raw
-- credential id, so a credential id (up to 1023 bytes) is unique over all accounts under an
-- index every backend can hold; passkey is the serialised credential (public key, counter,
-- flags; nothing secret). counter mirrors the authenticator's signature counter.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    credential_key TEXT NOT NULL UNIQUE,
    passkey TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    counter BIGINT NOT NULL
);
CREATE INDEX passkeys_account ON passkeys (account_id);
-- Ceremonies in progress (kind 'register' or 'auth'), kept here and not in a node's memory so
-- a ceremony started on one node finishes on another. A row is taken by one DELETE, so
-- exactly one request can finish it; account_id is NULL for a passwordless sign-in.
CREATE TABLE passkey_challenges (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    account_id TEXT,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX passkey_challenges_expiry ON passkey_challenges (expires_at);
