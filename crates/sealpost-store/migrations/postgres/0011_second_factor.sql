-- Sealpost schema v11 (PostgreSQL): recipients' second factor (issue 15 items 3, 5, 7).
-- One row per account that has or had a TOTP authenticator. The seeds are wrapped under the
-- master key (never in clear); pending_wrapped is the seed shown on the enrolment page until
-- the first code confirms it. last_step is the newest time step used, claimed by one
-- conditional UPDATE so a code works once even across nodes. must_enrol: an administrator
-- asked for a new enrolment at the next sign-in.
CREATE TABLE account_totp (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    secret_wrapped BYTEA,
    enrolled_at BIGINT,
    pending_wrapped BYTEA,
    last_step BIGINT,
    must_enrol INTEGER NOT NULL DEFAULT 0
);
-- Ten single-use recovery codes per enrolment, only their SHA-256 (the codes carry 80 random
-- bits, so a plain hash cannot be searched); used_at is set once by a conditional UPDATE.
CREATE TABLE factor_recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (account_id, code_hash)
);
-- "Remember this device": the hash of the device cookie's token, bound to one account.
CREATE TABLE remembered_devices (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_agent TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX remembered_devices_account ON remembered_devices (account_id);
-- A sign-in past its first factor, waiting (5 minutes) for the second; only the token's hash.
CREATE TABLE pending_sign_ins (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    first_method VARCHAR(32) NOT NULL,
    next_path TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
