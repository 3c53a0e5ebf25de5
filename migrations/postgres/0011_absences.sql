-- A worker's absence, planned (recorded by the worker or a senior) or unplanned (recorded by
-- a senior), from starts_at (inclusive) to ends_at (exclusive), Unix milliseconds. The reason
-- for an absence is not recorded: it is the worker's own business.
create table absences (
    id text primary key,
    staff_id text not null references staff (id),
    starts_at bigint not null,
    ends_at bigint not null,
    planned boolean not null,
    recorded_by text not null references staff (id),
    recorded_at bigint not null,
    check (ends_at > starts_at)
);
create index absences_by_staff on absences (staff_id, ends_at);
