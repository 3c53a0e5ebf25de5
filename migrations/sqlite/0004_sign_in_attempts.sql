-- Every sign-in attempt, kept for security review and used to throttle guessing. Never the
-- password. outcome: 'success', 'failure' (wrong username or password, or disabled) or
-- 'throttled' (refused without checking, too many recent failures).
create table sign_in_attempts (
    id text primary key,
    username text not null,
    staff_id text references staff (id),
    outcome text not null check (outcome in ('success', 'failure', 'throttled')),
    at bigint not null
);
create index sign_in_attempts_by_username on sign_in_attempts (username, at);
