-- The duty senior of each day (service-wide) and the duty phone to reach them.
create table duty_rota (
    day text primary key,
    staff_id text not null references staff (id),
    phone text not null,
    set_by text not null references staff (id),
    set_at bigint not null
);
