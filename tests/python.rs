//! The Python package's tests (`python/tests`): extraction, the client,
//! each trainer's adapter against a live `anneval serve`, OpenRLHF's JSON
//! against `POST /get_reward`, and the Ray launcher on a local cluster. They
//! run in the virtual environment `scripts/setup` makes (`.venv`), with this
//! build's binary and the tests' shared compile cache.

mod common;

#[test]
fn the_python_package_passes_its_tests() {
    common::python_tests(".venv", "tests", "test*.py");
}
