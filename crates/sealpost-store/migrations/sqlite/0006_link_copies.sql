-- Sealpost schema v6 (SQLite): encrypted copies kept for the opt-in `link` delivery profile.
-- The payload is the envelope exactly as sealed for the recipient (ciphertext); it is kept
-- until `expires_at` (`delivery.link_days`) and then deleted by the sweeper. Only the SHA-256
-- of the link id is stored, like session tokens.
CREATE TABLE link_copies (
    link_hash TEXT PRIMARY KEY,
    envelope_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX link_copies_envelope ON link_copies (envelope_id);
CREATE INDEX link_copies_account ON link_copies (account_id);
CREATE INDEX link_copies_expiry ON link_copies (expires_at);
