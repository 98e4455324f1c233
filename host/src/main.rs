//! The `anneval` command: everything lives in the library.

fn main() -> std::process::ExitCode {
    anneval::cli::main()
}
