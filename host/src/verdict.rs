//! How an evaluation ends: exactly one [`Verdict`], and for every verdict but
//! `ok` a [`Failure`] carrying the message a user (or an RL trainer) reads.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The outcome of one evaluation, serialised as a snake_case string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Ran to the end; the reward was computed (it may be 0).
    Ok,
    /// The source does not compile; the diagnostics are in the message.
    CompileError,
    /// Refused before running: forbidden imports, over-size input, policy.
    Rejected,
    /// The guest trapped or panicked.
    Trap,
    /// A fuel or wall-clock deadline passed.
    Timeout,
    /// The guest asked for more memory than allowed.
    MemoryLimit,
    /// Wrong result length, ids out of range, duplicate ids.
    InvalidOutput,
    /// anneval itself failed; never the candidate's fault.
    InternalError,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::CompileError => "compile_error",
            Verdict::Rejected => "rejected",
            Verdict::Trap => "trap",
            Verdict::Timeout => "timeout",
            Verdict::MemoryLimit => "memory_limit",
            Verdict::InvalidOutput => "invalid_output",
            Verdict::InternalError => "internal_error",
        }
    }

    pub const ALL: [Verdict; 8] = [
        Verdict::Ok,
        Verdict::CompileError,
        Verdict::Rejected,
        Verdict::Trap,
        Verdict::Timeout,
        Verdict::MemoryLimit,
        Verdict::InvalidOutput,
        Verdict::InternalError,
    ];
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an evaluation did not end `ok`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub verdict: Verdict,
    pub message: String,
}

impl Failure {
    pub fn new(verdict: Verdict, message: impl Into<String>) -> Self {
        debug_assert_ne!(verdict, Verdict::Ok, "a failure needs a failing verdict");
        Failure {
            verdict,
            message: message.into(),
        }
    }

    pub fn compile_error(message: impl Into<String>) -> Self {
        Failure::new(Verdict::CompileError, message)
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Failure::new(Verdict::Rejected, message)
    }

    pub fn invalid_output(message: impl Into<String>) -> Self {
        Failure::new(Verdict::InvalidOutput, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Failure::new(Verdict::InternalError, message)
    }

    /// Wraps an error of anneval's own (I/O, toolchain) as `internal_error`,
    /// keeping its whole context chain.
    pub fn internal_from(err: anyhow::Error) -> Self {
        Failure::internal(format!("{err:#}"))
    }

    /// Prefixes the message with where it happened ("build: ...").
    pub fn during(mut self, phase: &str) -> Self {
        self.message = format!("{phase}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.verdict, self.message)
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_serialise_as_their_documented_names() {
        for v in Verdict::ALL {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), v);
        }
    }
}
