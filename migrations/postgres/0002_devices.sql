-- Devices and the Automerge actor ids they write with. A change is accepted only from an
-- actor registered to the device and user sending it, so no one can make an edit look like
-- someone else's.

create table devices (
    id text primary key,
    staff_id text not null references staff (id),
    first_seen_at bigint not null,
    last_seen_at bigint not null
);
create index devices_by_staff on devices (staff_id);

create table device_actors (
    actor bytea primary key,
    device_id text not null references devices (id),
    staff_id text not null references staff (id),
    registered_at bigint not null
);
