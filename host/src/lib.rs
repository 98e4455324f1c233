//! anneval: safely score untrusted, machine-generated approximate
//! nearest-neighbour search kernels.
//!
//! A candidate kernel (Rust source or a WebAssembly component) is compiled
//! against the WIT world in `wit/` ([`compile`]), run with no capabilities
//! under memory, stack, time and fuel limits ([`sandbox`], [`guest`]) over an
//! ANN dataset ([`dataset`]), measured over a sweep of the search parameter
//! ([`measure`]), and its QPS–recall curve turned into one reward
//! ([`metrics`], [`evaluation`]). [`evaluator`] ties the steps together; the
//! `anneval` binary ([`cli`]) only parses and prints.

pub mod bundle;
pub mod cli;
pub mod codebase;
pub mod compile;
pub mod dataset;
pub mod evaluation;
pub mod evaluator;
pub mod export;
pub mod gate;
pub mod guest;
pub mod isolate;
pub mod jail;
pub mod measure;
pub mod metrics;
pub mod native;
pub mod paths;
pub mod process;
pub mod sandbox;
pub mod serve;
pub mod stats;
pub mod template;
pub mod validate;
pub mod verdict;

pub use evaluation::Evaluation;
pub use evaluator::{Candidate, Evaluator, ScoreOptions};
pub use verdict::{Failure, Verdict};
