-- The key each device's data key is wrapped with (see docs/security.md, "Data on the
-- device"). Released only to a signed-in session of the device's owner while the device is not
-- revoked; erased when the device is reported lost.
alter table devices add column wrap_key blob;
