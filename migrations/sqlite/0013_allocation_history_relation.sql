-- The allocation history also keeps co-workers added and removed.
alter table allocation_history add column relation text not null default 'worker';
