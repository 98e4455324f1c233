//! Everything that turns an [`Evaluation`](crate::evaluation::Evaluation) into
//! something to read: one module per format, all reading the same type.

pub mod json;
pub mod markdown;
pub mod plot;
pub mod table;
