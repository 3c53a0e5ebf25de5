//! The real server binary, built inside the test crate so tests can start it as a separate
//! process (and kill it with SIGKILL) via `CARGO_BIN_EXE_casebook-server-under-test`.

/// The allocator the real server binary uses (`server/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    casebook_server::cli::main()
}
