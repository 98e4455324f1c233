//! Property-based fuzzing of the two parsers that take outside bytes:
//! component validation (what a candidate hands over) and HDF5 dataset
//! loading (what a user points at). Mutated valid inputs and random bytes must
//! yield a clean result or a clean error: never a panic, a crash or a hang.
//!
//! `scripts/test` runs a short, bounded pass from a fixed seed (the same
//! inputs every run); for a long run from a fresh seed:
//!
//!     PROPTEST_CASES=20000 ANNEVAL_FUZZ_SEED=random cargo test --release --test fuzz

mod common;

use std::sync::OnceLock;

use anneval::dataset::hdf5;
use anneval::guest::KernelComponent;
use anneval::{Candidate, Verdict};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96)
}

fn config() -> ProptestConfig {
    let rng_seed = match std::env::var("ANNEVAL_FUZZ_SEED").as_deref() {
        Ok("random") => proptest::test_runner::RngSeed::Random,
        Ok(seed) => proptest::test_runner::RngSeed::Fixed(seed.parse().unwrap_or(1)),
        Err(_) => proptest::test_runner::RngSeed::Fixed(1),
    };
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        rng_seed,
        ..ProptestConfig::default()
    }
}

fn sandbox() -> &'static anneval::sandbox::Sandbox {
    static SANDBOX: OnceLock<anneval::sandbox::Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| anneval::sandbox::Sandbox::new(common::limits()).unwrap())
}

/// A valid kernel component (the reference, compiled once).
fn component() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let evaluator = common::evaluator();
        evaluator.component(&Candidate::Reference).0.unwrap()
    })
}

/// A valid, small ann-benchmarks file.
fn dataset_file() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.hdf5");
        let mut data = common::xs20("random-xs-20-euclidean").clone();
        data.train.truncate(200 * data.dim);
        data.test.truncate(5 * data.dim);
        data.gt_k = 1;
        data.neighbors = vec![0; 5];
        data.distances = vec![0.0; 5];
        hdf5::write(&path, &data).unwrap();
        std::fs::read(&path).unwrap()
    })
}

/// An edit to a byte string: overwrite, truncate or splice.
#[derive(Clone, Debug)]
enum Edit {
    Overwrite(usize, Vec<u8>),
    Truncate(usize),
    Insert(usize, Vec<u8>),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        4 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Edit::Overwrite(i, b)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64)).prop_map(|(i, b)| Edit::Insert(i, b)),
    ];
    prop::collection::vec(edit, 1..6)
}

fn apply(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for edit in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match edit {
            Edit::Overwrite(i, b) => {
                let start = at(*i, bytes.len());
                for (j, byte) in b.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(start + j) {
                        *slot = *byte;
                    }
                }
            }
            Edit::Truncate(i) => bytes.truncate(at(*i, bytes.len() + 1)),
            Edit::Insert(i, b) => {
                let start = at(*i, bytes.len() + 1);
                bytes.splice(start..start, b.iter().copied());
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_components_are_validated_without_panicking(edits in edits()) {
        let bytes = apply(component(), &edits);
        if let Err(failure) = KernelComponent::load(sandbox(), &bytes) {
            prop_assert_eq!(failure.verdict, Verdict::Rejected, "{}", failure.message);
        }
    }

    #[test]
    fn random_bytes_are_never_a_component(tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        bytes.extend(tail);
        let failure = KernelComponent::load(sandbox(), &bytes).err();
        prop_assert!(failure.is_some_and(|f| f.verdict == Verdict::Rejected));
    }

    #[test]
    fn mutated_dataset_files_load_or_fail_cleanly(edits in edits()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mutated.hdf5");
        std::fs::write(&path, apply(dataset_file(), &edits)).unwrap();
        match hdf5::read(&path) {
            Ok(data) => prop_assert!(data.validate().is_ok()),
            Err(err) => {
                let message = format!("{err:#}");
                prop_assert!(message.contains("mutated.hdf5"), "{}", message);
            }
        }
        let _ = hdf5::layout(&path);
    }
}
