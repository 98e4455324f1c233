//! The guest template's checks (`checks/mod.rs`) on every kernel in
//! `variants/`, natively: the variants are the fixtures of the measurement
//! and fidelity benchmarks, so each must be a correct kernel.
//!
//! A variant is written as a `src/kernel.rs`, naming the SDK as
//! `crate::sdk`; the module below gives it that path here.

mod checks;

mod sdk {
    pub use anneval_guest::sdk::*;
}

macro_rules! variant_tests {
    ($($name:ident: $path:literal, effort_matters = $effort:expr;)*) => {
        $(
            #[path = $path]
            mod $name;
        )*

        mod checked {$(
            mod $name {
                use crate::$name::Index;

                #[test]
                fn recall_at_10_is_high_at_ef_100() {
                    crate::checks::recall_at_10_is_high_at_ef_100::<Index>();
                }

                #[test]
                fn save_load_round_trip_answers_identically() {
                    crate::checks::save_load_round_trip_answers_identically::<Index>();
                }

                #[test]
                fn more_effort_never_hurts_and_ef_below_k_means_k() {
                    crate::checks::more_effort_never_hurts_and_ef_below_k_means_k::<Index>($effort);
                }
            }
        )*}
    };
}

variant_tests! {
    brute_force: "../variants/brute_force.rs", effort_matters = false;
    hnsw_boxed: "../variants/hnsw_boxed.rs", effort_matters = true;
    hnsw_heap: "../variants/hnsw_heap.rs", effort_matters = true;
    hnsw_m32: "../variants/hnsw_m32.rs", effort_matters = true;
    hnsw_m8: "../variants/hnsw_m8.rs", effort_matters = true;
    hnsw_no_prefetch: "../variants/hnsw_no_prefetch.rs", effort_matters = true;
    hnsw_scalar: "../variants/hnsw_scalar.rs", effort_matters = true;
    hnsw_sse: "../variants/hnsw_sse.rs", effort_matters = true;
    hnsw_unfused: "../variants/hnsw_unfused.rs", effort_matters = true;
    ivf_flat: "../variants/ivf_flat.rs", effort_matters = true;
}

/// Every variant file is listed above.
#[test]
fn every_variant_is_checked() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("variants");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .collect();
    files.sort();
    let listed = [
        "brute_force.rs",
        "hnsw_boxed.rs",
        "hnsw_heap.rs",
        "hnsw_m32.rs",
        "hnsw_m8.rs",
        "hnsw_no_prefetch.rs",
        "hnsw_scalar.rs",
        "hnsw_sse.rs",
        "hnsw_unfused.rs",
        "ivf_flat.rs",
    ];
    assert_eq!(files, listed, "add the new variant to variant_tests! above");
}
