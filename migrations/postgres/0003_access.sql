-- Access beyond allocation: cover for a bounded period, and a senior's out-of-allocation
-- ("duty") access, which needs a reason and is shown to the manager.

-- A worker covering a case while its allocated worker is absent. Access holds from
-- starts_at (inclusive) to ends_at (exclusive), Unix milliseconds.
create table cover_assignments (
    id text primary key,
    case_id text not null references cases (id),
    staff_id text not null references staff (id),
    starts_at bigint not null,
    ends_at bigint not null,
    reason text not null,
    created_by text not null references staff (id),
    created_at bigint not null,
    check (ends_at > starts_at)
);
create index cover_by_staff on cover_assignments (staff_id, ends_at);

-- A senior opening a case outside their allocation (the duty senior in an emergency).
create table duty_access (
    id text primary key,
    case_id text not null references cases (id),
    staff_id text not null references staff (id),
    reason text not null,
    opened_at bigint not null,
    expires_at bigint not null
);
create index duty_access_by_staff on duty_access (staff_id, expires_at);

-- Reallocations, kept as history.
create table allocation_history (
    id text primary key,
    case_id text not null references cases (id),
    from_staff_id text references staff (id),
    to_staff_id text not null references staff (id),
    reason text not null,
    decided_by text not null references staff (id),
    decided_at bigint not null
);
