//! `casebook-server`: see the crate documentation in `lib.rs`.

fn main() -> anyhow::Result<()> {
    casebook_server::cli::main()
}
