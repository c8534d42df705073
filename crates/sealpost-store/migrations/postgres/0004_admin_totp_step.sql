-- Sealpost schema v4 (PostgreSQL): the last TOTP time step an admin used, so a code is accepted once.
ALTER TABLE admins ADD COLUMN totp_last_step BIGINT;
