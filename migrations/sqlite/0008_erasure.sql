-- The erasure path: a chronology rebuilt without an erased entry gets a new document; the old
-- one is marked superseded, its content rows are deleted, and its lineage is refused.
alter table documents add column superseded_by text;
alter table documents add column erased_at bigint;
