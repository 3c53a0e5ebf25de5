-- What the lists need from each record document (not the chronology), kept by the server as
-- the documents change: whether the record is complete, and a short summary of non-sensitive
-- fields (dates, choices). Rebuilt from the document whenever it changes.
create table record_projections (
    document_id text primary key references documents (id),
    case_id text not null references cases (id),
    kind text not null,
    complete boolean not null,
    summary text not null,
    updated_at bigint not null
);
create index record_projections_by_case on record_projections (case_id);
