-- Sealpost schema v10 (MariaDB/MySQL): recipient access by mailbox code (issue 15).
-- How the account's holder got in the first time: 'sender' (a generated password went to the
-- internal sender) or 'mailbox-code' (no password was generated; the holder signs in with a
-- one-time code mailed to the account's own address and then chooses a password). An account
-- without a password has an empty password_hash. The codes themselves reuse recovery_codes
-- (one live code per account, keyed hash, tries and a per-address send window).
ALTER TABLE accounts ADD COLUMN first_contact VARCHAR(32) NOT NULL DEFAULT 'sender';
