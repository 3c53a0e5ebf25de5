//! `casebook-server`: see the crate documentation in `lib.rs`.

/// mimalloc rather than the system allocator: Automerge allocates and frees many small
/// blocks, and glibc's malloc spent a good part of the CPU consolidating and splitting them
/// (at 1,000 devices and 100 changes/s the server used 43% of a core with it, 31% with
/// mimalloc: `docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    casebook_server::cli::main()
}
