//! Native checks of whatever `src/kernel.rs` holds: it finds the true
//! neighbours on a synthetic clustered set, survives save/load unchanged, and
//! honours `k` and `ef`. A candidate can run these with
//! `cargo test -p anneval-guest --release` before submitting.

mod checks;

use anneval_guest::kernel::Index;

#[test]
fn recall_at_10_is_high_at_ef_100() {
    checks::recall_at_10_is_high_at_ef_100::<Index>();
}

#[test]
fn save_load_round_trip_answers_identically() {
    checks::save_load_round_trip_answers_identically::<Index>();
}

#[test]
fn more_effort_never_hurts_much_and_ef_below_k_means_k() {
    checks::more_effort_never_hurts_and_ef_below_k_means_k::<Index>(true);
}
