//! The native runner's entry point: the kernel and the SDK, compiled for the
//! host's CPU, serving one request over standard input and output (see
//! `native.rs`). anneval builds it with `rustc --crate-type bin` and runs it
//! in its OS sandbox; it is not part of the library.

// A kernel uses only part of the SDK.
#![allow(dead_code)]

mod kernel;
mod native;
mod sdk;

fn main() -> std::process::ExitCode {
    match native::serve() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("native runner: {e}");
            std::process::ExitCode::from(3)
        }
    }
}
