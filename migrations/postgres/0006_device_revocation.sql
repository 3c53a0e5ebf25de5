-- A device reported lost (or otherwise revoked) is refused at once and told to wipe itself
-- on its next connection.
alter table devices add column revoked_at bigint;
alter table devices add column revoked_by text;
