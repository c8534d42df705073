-- Sealpost schema v8 (SQLite): message control (issue 16). Each ledger row (one envelope, one
-- recipient) gains the message it belongs to, the queue item of its carrier, the envelope's
-- per-message secret wrapped under the master key (deleted on revocation or expiry, which makes
-- a version-2 envelope unreadable for good), its expiry and revocation; and a per-recipient
-- timeline of events. Rows from before this version belong to a message of their own.
ALTER TABLE message_ledger ADD COLUMN message_id TEXT;
ALTER TABLE message_ledger ADD COLUMN queue_id TEXT;
ALTER TABLE message_ledger ADD COLUMN secret BLOB;
ALTER TABLE message_ledger ADD COLUMN expires_at INTEGER;
ALTER TABLE message_ledger ADD COLUMN revoked_at INTEGER;
ALTER TABLE message_ledger ADD COLUMN revoked_by TEXT;
ALTER TABLE message_ledger ADD COLUMN revoke_reason TEXT;
ALTER TABLE message_ledger ADD COLUMN revoke_reason_public INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message_ledger ADD COLUMN secret_deleted_at INTEGER;
ALTER TABLE message_ledger ADD COLUMN subject TEXT;
ALTER TABLE message_ledger ADD COLUMN subject_hash TEXT;
UPDATE message_ledger SET message_id = envelope_id WHERE message_id IS NULL;
CREATE INDEX message_ledger_message ON message_ledger (message_id);
CREATE INDEX message_ledger_queue ON message_ledger (queue_id);
CREATE INDEX message_ledger_expires ON message_ledger (expires_at);
-- One row per thing that happened to one envelope: kind is sealed, handed-over, bounced,
-- first-opened, opened, downloaded, replied, revoked, expired or secret-deleted.
CREATE TABLE message_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT,
    client TEXT
);
CREATE INDEX message_events_envelope ON message_events (envelope_id, at);
CREATE INDEX message_events_at ON message_events (at);
CREATE INDEX message_events_kind ON message_events (kind, at);
