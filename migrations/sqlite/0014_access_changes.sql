-- One counter that moves whenever something a live connection's access depends on changes
-- (sessions ended, accounts disabled or moved, devices revoked, allocations, cover, duty
-- access, cases moving teams, records registered or retired). The server reads it a few
-- times a second and its connections re-derive their access only when it moved (or a
-- time-bound grant starts or ends), instead of every connection asking every second.
-- (PostgreSQL notifies instead: see its 0014.)
create table access_changes (
    id integer primary key check (id = 1),
    counter bigint not null
);
insert into access_changes (id, counter) values (1, 0);

create trigger access_changes_sessions_delete after delete on sessions
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_staff_update after update of disabled, role, team_id on staff
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_devices_revoke after update of revoked_at on devices
begin update access_changes set counter = counter + 1; end;

create trigger access_changes_allocations_insert after insert on allocations
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_allocations_update after update on allocations
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_allocations_delete after delete on allocations
begin update access_changes set counter = counter + 1; end;

create trigger access_changes_cover_insert after insert on cover_assignments
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_cover_update after update on cover_assignments
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_cover_delete after delete on cover_assignments
begin update access_changes set counter = counter + 1; end;

create trigger access_changes_duty_insert after insert on duty_access
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_duty_update after update on duty_access
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_duty_delete after delete on duty_access
begin update access_changes set counter = counter + 1; end;

create trigger access_changes_cases_insert after insert on cases
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_cases_update after update of team_id on cases
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_cases_delete after delete on cases
begin update access_changes set counter = counter + 1; end;

create trigger access_changes_documents_insert after insert on documents
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_documents_update after update of case_id, superseded_by on documents
begin update access_changes set counter = counter + 1; end;
create trigger access_changes_documents_delete after delete on documents
begin update access_changes set counter = counter + 1; end;
