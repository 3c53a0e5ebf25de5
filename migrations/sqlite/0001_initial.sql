-- Casebook's first schema (SQLite). The PostgreSQL twin is ../postgres/0001_initial.sql;
-- keep the two in step. Ids are UUID strings; times are Unix milliseconds (UTC), so both
-- engines store and compare them the same way.

-- The service's geographic teams.
create table teams (
    id text primary key,
    name text not null unique
);

-- Staff who sign in. The role decides what a person may do; the team scopes seniors.
create table staff (
    id text primary key,
    username text not null unique,
    name text not null,
    role text not null check (role in ('practitioner', 'senior', 'manager', 'admin')),
    team_id text references teams (id),
    -- argon2id PHC string; never the password.
    password_hash text not null,
    disabled boolean not null default false,
    created_at bigint not null
);

-- Signed-in sessions. Only a hash of the token is kept, so a copy of the database does not
-- let anyone sign in.
create table sessions (
    token_hash text primary key,
    staff_id text not null references staff (id),
    created_at bigint not null,
    last_seen_at bigint not null
);
create index sessions_by_staff on sessions (staff_id);

-- People under supervision (synthetic in fixtures and the demo).
create table people (
    id text primary key,
    name text not null,
    date_of_birth text not null
);

-- A case: one person's period of supervision, held by one team.
create table cases (
    id text primary key,
    person_id text not null references people (id),
    reference text not null unique,
    order_type text not null,
    team_id text not null references teams (id),
    created_at bigint not null
);

-- Who works a case. Access to a case's documents is derived from here on the server.
create table allocations (
    case_id text not null references cases (id),
    staff_id text not null references staff (id),
    relation text not null check (relation in ('worker', 'co-worker')),
    primary key (case_id, staff_id)
);
create index allocations_by_staff on allocations (staff_id);

-- Automerge documents and the case they belong to.
create table documents (
    id text primary key,
    case_id text not null references cases (id),
    kind text not null,
    created_at bigint not null
);
create index documents_by_case on documents (case_id);

-- The bytes of every change not yet folded into a snapshot. Written in the same transaction
-- as the ledger row, and before the server acknowledges the change.
create table document_changes (
    document_id text not null references documents (id),
    hash blob not null,
    bytes blob not null,
    primary key (document_id, hash)
);

-- Who sent every change, kept for good (compaction removes bytes, never attribution).
create table change_ledger (
    document_id text not null references documents (id),
    hash blob not null,
    staff_id text not null references staff (id),
    device_id text not null,
    actor blob not null,
    received_at bigint not null,
    primary key (document_id, hash)
);

-- A compacted document: replaces the change rows it covers, in the transaction that
-- deletes them.
create table document_snapshots (
    document_id text primary key references documents (id),
    bytes blob not null,
    updated_at bigint not null
);
