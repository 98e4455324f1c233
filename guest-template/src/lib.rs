//! The anneval guest template: the crate a candidate kernel fills in.
//!
//! A candidate replaces one file, `src/kernel.rs`, which defines `pub struct
//! Index` implementing [`sdk::Kernel`]. Everything else here is fixed: the SDK
//! (portable SIMD distances, save/load byte helpers, typed parameters, search
//! building blocks), the glue that exports the kernel through the WIT world
//! in `wit/` when compiled to WebAssembly, and the native runner's glue
//! (`native.rs`, with its entry point `native_main.rs`) for the native engine.
//! The same crate compiles natively, so a kernel can have ordinary unit tests.

pub mod kernel;
pub mod sdk;

#[cfg(target_arch = "wasm32")]
mod glue;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
