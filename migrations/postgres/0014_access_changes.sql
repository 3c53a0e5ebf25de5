-- One counter that moves whenever something a live connection's access depends on changes
-- (sessions ended, accounts disabled or moved, devices revoked, allocations, cover, duty
-- access, cases moving teams, records registered or retired). Each server instance reads it
-- a few times a second and its connections re-derive their access only when it moved (or a
-- time-bound grant starts or ends), instead of every connection asking every second.
create table access_changes (
    id integer primary key check (id = 1),
    counter bigint not null
);
insert into access_changes (id, counter) values (1, 0);

create function access_changed() returns trigger language plpgsql as $$
begin
    update access_changes set counter = counter + 1;
    return null;
end;
$$;

create trigger access_changes_sessions after delete on sessions
    for each statement execute function access_changed();
create trigger access_changes_staff after update of disabled, role, team_id on staff
    for each statement execute function access_changed();
create trigger access_changes_devices after update of revoked_at on devices
    for each statement execute function access_changed();
create trigger access_changes_allocations after insert or update or delete on allocations
    for each statement execute function access_changed();
create trigger access_changes_cover after insert or update or delete on cover_assignments
    for each statement execute function access_changed();
create trigger access_changes_duty after insert or update or delete on duty_access
    for each statement execute function access_changed();
create trigger access_changes_cases after insert or delete or update of team_id on cases
    for each statement execute function access_changed();
create trigger access_changes_documents after insert or delete or update of case_id, superseded_by on documents
    for each statement execute function access_changed();
