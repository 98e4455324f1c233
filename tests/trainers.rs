//! The trainer adapters inside the trainers' own code
//! (`python/trainer_tests`), at the versions pinned beside them, in the
//! virtual environments `scripts/setup --trainers` makes: TRL's
//! GRPOTrainer, verl's config, reward loader and NaiveRewardManager, and
//! OpenRLHF's reward executor in `.venv-trainers`; Axolotl's config and GRPO
//! strategy (with the TRL it pins) in `.venv-axolotl`.

mod common;

use std::sync::Mutex;

/// One trainer at a time: the rewards these tests check are speeds relative
/// to the reference, which a trainer stepping its model on the other core
/// would skew (a clean-clone run measured the reference at 2.5 times itself
/// while the other test trained).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn the_adapters_work_inside_trl_verl_and_openrlhf() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    common::python_tests(".venv-trainers", "trainer_tests", "test_trainers.py");
}

#[test]
fn the_adapter_works_inside_axolotl() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    common::python_tests(".venv-axolotl", "trainer_tests", "test_axolotl.py");
}
