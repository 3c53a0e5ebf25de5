-- The HRO process: identification sweeps and their returns, SSW decisions, the register
-- (rows are never deleted: de-registration ends one), plan sign-offs, completed reviews, and
-- tasks for seniors. The forms themselves are documents; these tables hold the decisions and
-- the projections the seniors' and manager's lists read.

create table sweeps (
    id text primary key,
    -- null: every team.
    team_id text references teams (id),
    period text not null,
    due_on text not null,
    opened_by text not null references staff (id),
    opened_at bigint not null,
    closed_at bigint
);

create table sweep_returns (
    sweep_id text not null references sweeps (id),
    staff_id text not null references staff (id),
    nil_return boolean not null,
    returned_at bigint not null,
    primary key (sweep_id, staff_id)
);

create table identifications (
    document_id text primary key references documents (id),
    case_id text not null references cases (id),
    sweep_id text references sweeps (id),
    submitted_by text not null references staff (id),
    submitted_at bigint not null,
    -- submitted, approved, declined, more-information
    status text not null,
    decided_by text references staff (id),
    decided_at bigint,
    rationale text
);
create index identifications_by_case on identifications (case_id);

create table hro_register (
    id text primary key,
    case_id text not null references cases (id),
    route text not null,
    mappa_category text not null,
    mappa_level text not null,
    caledonian boolean not null,
    csogp boolean not null,
    start_date text not null,
    next_review text not null,
    identification_id text references identifications (document_id),
    registered_by text not null references staff (id),
    registered_at bigint not null,
    ended_at bigint,
    ended_by text references staff (id),
    end_reason text
);
create index hro_register_by_case on hro_register (case_id);

create table plan_signoffs (
    document_id text primary key references documents (id),
    case_id text not null references cases (id),
    signed_by text not null references staff (id),
    signed_at bigint not null
);

create table review_completions (
    document_id text primary key references documents (id),
    case_id text not null references cases (id),
    held_on text not null,
    decision text not null,
    next_review text not null,
    completed_by text not null references staff (id),
    completed_at bigint not null
);

create table senior_tasks (
    id text primary key,
    case_id text not null references cases (id),
    document_id text references documents (id),
    reason text not null,
    created_at bigint not null,
    done_by text references staff (id),
    done_at bigint,
    discussion text
);
create index senior_tasks_by_case on senior_tasks (case_id);
