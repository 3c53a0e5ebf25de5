-- Whenever something a live connection's access depends on changes (sessions ended,
-- accounts disabled or moved, devices revoked, allocations, cover, duty access, cases moving
-- teams, records registered or retired), every server instance is told on commit, and its
-- connections re-derive their access then (or when a time-bound grant starts or ends),
-- instead of every connection asking every second. A notification rather than a counter
-- row (as on SQLite): it takes no row lock, so transactions touching these tables never
-- wait on each other for it, and it is delivered only when the transaction commits.
create function access_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('casebook_access', '');
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
