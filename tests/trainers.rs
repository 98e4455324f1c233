//! The trainer adapters inside the trainers' own code
//! (`python/trainer_tests`), at the versions pinned beside them, in the
//! virtual environments `scripts/setup --trainers` makes: TRL's
//! GRPOTrainer, verl's config, reward loader and NaiveRewardManager, and
//! OpenRLHF's reward executor in `.venv-trainers`; Axolotl's config and GRPO
//! strategy (with the TRL it pins) in `.venv-axolotl`.

mod common;

#[test]
fn the_adapters_work_inside_trl_verl_and_openrlhf() {
    common::python_tests(".venv-trainers", "trainer_tests", "test_trainers.py");
}

#[test]
fn the_adapter_works_inside_axolotl() {
    common::python_tests(".venv-axolotl", "trainer_tests", "test_axolotl.py");
}
