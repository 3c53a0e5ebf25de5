-- The audit log required by DPA 2018 s.62: who did what to which case and record, when, on
-- what basis. Never the content. Append-only: each record carries the hash of the previous
-- one, so an edited or removed record breaks the chain (`casebook-server audit verify`).
create table audit_log (
    seq bigint primary key,
    operation text not null,
    staff_id text not null,
    role text not null,
    device_id text not null,
    case_id text not null,
    person_id text not null,
    document_id text not null,
    basis text not null,
    -- When it happened on the device (a view made offline is uploaded later) and when the
    -- server received it, Unix ms UTC.
    occurred_at bigint not null,
    received_at bigint not null,
    recipients text not null,
    change_hashes text not null,
    detail text not null,
    prev_hash text not null,
    hash text not null
);
create index audit_by_case on audit_log (case_id, seq);
create index audit_by_staff on audit_log (staff_id, seq);
create index audit_by_person on audit_log (person_id, seq);

-- The head of the chain: one row, updated in the transaction of every append, which also
-- puts appends in one order across server instances.
create table audit_head (
    id integer primary key check (id = 1),
    seq bigint not null,
    hash text not null
);
insert into audit_head (id, seq, hash) values (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
