//! The `canary` binary: parse the command line, dispatch. Everything else is in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    canary_engine::cli::run()
}
