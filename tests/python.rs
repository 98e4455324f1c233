//! The Python package's tests (`python/tests`): extraction, the client,
//! each trainer's adapter against a live `anneval serve`, OpenRLHF's JSON
//! against `POST /get_reward`, and the Ray launcher on a local cluster. They
//! run in the virtual environment `scripts/setup` makes (`.venv`), with this
//! build's binary and the tests' shared compile cache.

mod common;

use std::process::Command;

#[test]
fn the_python_package_passes_its_tests() {
    let root = common::repo_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup, which makes it",
        python.display()
    );
    let out = Command::new(&python)
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(root.join("python/tests"))
        .arg("-t")
        .arg(root.join("python"))
        .env("ANNEVAL_BIN", env!("CARGO_BIN_EXE_anneval"))
        .env("ANNEVAL_CACHE", common::cache_dir())
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .output()
        .expect("running the Python tests");
    let report = String::from_utf8_lossy(&out.stderr);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    println!("{report}");
    assert!(out.status.success(), "the Python tests failed:\n{report}");
    assert!(
        !report.contains("skipped"),
        "every Python test must run here:\n{report}"
    );
}
