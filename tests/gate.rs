//! `anneval gate`: exit codes, the Markdown and JSON reports, the plots.

mod common;

use std::path::Path;
use std::process::{Command, Output};

/// A quick gate on the small, easy set (the held-out queries, three efs).
fn gate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anneval"))
        .arg("gate")
        .args([
            "--dataset",
            "random-xs-20-euclidean",
            "--ef",
            "10,20,40",
            "--runs",
            "3",
            "--max-queries",
            "100",
            "-q",
        ])
        .args(args)
        .env("ANNEVAL_CACHE", common::cache_dir())
        .env("ANNEVAL_DATA", dir)
        .env("GITHUB_STEP_SUMMARY", dir.join("step-summary.md"))
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_faster_candidate_passes_with_markdown_json_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let brute = common::variant("brute_force.rs");
    let out = gate(
        dir.path(),
        &[
            "--baseline",
            brute.to_str().unwrap(),
            "--candidate",
            "reference",
            "--markdown",
            "gate.md",
            "--json",
            "gate.json",
            "--plot",
            "gate.svg",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let md = std::fs::read_to_string(dir.path().join("gate.md")).unwrap();
    assert!(md.contains("**PASS: the candidate is"), "{md}");
    for row in [
        "| reward (mean credited QPS",
        "| QPS at recall 0.9 |",
        "| best recall |",
        "| instructions per query",
    ] {
        assert!(md.contains(row), "{row} missing from\n{md}");
    }
    assert!(md.contains("![QPS against recall](gate.svg)"), "{md}");
    let summary = std::fs::read_to_string(dir.path().join("step-summary.md")).unwrap();
    assert!(
        summary.contains("**PASS") && !summary.contains("gate.svg"),
        "{summary}"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("gate.json")).unwrap()).unwrap();
    assert_eq!(json["passed"], true);
    let ratio = &json["ratio"];
    assert!(ratio["low"].as_f64().unwrap() > 1.0, "{ratio}");
    assert!(
        ratio["estimate"].as_f64().unwrap() > 3.0,
        "HNSW is far faster than a scan: {ratio}"
    );
    assert_eq!(json["baseline"]["verdict"], "ok");
    assert_eq!(json["candidate"]["dataset_info"]["queries"], "holdout");
    assert_eq!(
        json["candidate"]["replicate_rewards"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let svg = std::fs::read_to_string(dir.path().join("gate.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("width=\"960\"") && svg.contains("height=\"640\"")
    );
    for label in [
        "baseline",
        "candidate",
        "reward band",
        "Queries per second",
        "Recall",
    ] {
        assert!(svg.contains(label), "{label} missing from the plot");
    }
}

#[test]
fn a_slower_candidate_fails_and_a_broken_one_fails_too() {
    let dir = tempfile::tempdir().unwrap();
    let brute = common::variant("brute_force.rs");
    let out = gate(
        dir.path(),
        &[
            "--baseline",
            "reference",
            "--candidate",
            brute.to_str().unwrap(),
            "--json",
            "slow.json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("slow.json")).unwrap()).unwrap();
    assert_eq!(json["passed"], false);
    assert!(
        json["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not shown to be above 1.00×"),
        "{json}"
    );

    let broken = dir.path().join("broken.rs");
    std::fs::write(&broken, "pub struct Index;").unwrap();
    let out = gate(
        dir.path(),
        &[
            "--baseline",
            "reference",
            "--candidate",
            broken.to_str().unwrap(),
            "--json",
            "broken.json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("broken.json")).unwrap()).unwrap();
    assert!(
        json["reasons"][0]
            .as_str()
            .unwrap()
            .contains("verdict is compile_error"),
        "{json}"
    );
}

#[test]
fn an_identical_kernel_is_not_shown_faster_by_exact_fuel() {
    let dir = tempfile::tempdir().unwrap();
    let out = gate(
        dir.path(),
        &[
            "--baseline",
            "reference",
            "--candidate",
            "reference",
            "--metric",
            "fuel",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn comparisons_that_cannot_be_made_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.rs");
    std::fs::write(&broken, "pub struct Index;").unwrap();
    let out = gate(
        dir.path(),
        &[
            "--baseline",
            broken.to_str().unwrap(),
            "--candidate",
            "reference",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the baseline itself did not score"),
        "{}",
        text(&out.stderr)
    );
    let out = gate(
        dir.path(),
        &[
            "--baseline",
            "reference",
            "--candidate",
            "reference",
            "--confidence",
            "1.5",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--confidence"),
        "{}",
        text(&out.stderr)
    );
    let out = gate(dir.path(), &["--baseline", "reference"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn score_plots_png_of_the_right_size_with_the_kernel_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_anneval"))
        .args([
            "score",
            "--ef",
            "4,16,64",
            "--runs",
            "1",
            "--max-queries",
            "100",
            "-q",
            "--plot",
        ])
        .arg(dir.path().join("curve.png"))
        .env("ANNEVAL_CACHE", common::cache_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = image::open(dir.path().join("curve.png")).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (960, 640));
    // The first series' colour (plotters' palette, index 0) is on the canvas.
    let drawn = png.pixels().filter(|p| p.0 == [230, 25, 75]).count();
    assert!(drawn > 50, "only {drawn} pixels of the kernel's colour");
    let out = Command::new(env!("CARGO_BIN_EXE_anneval"))
        .args([
            "score",
            "--ef",
            "4",
            "--runs",
            "1",
            "--max-queries",
            "10",
            "-q",
            "--plot",
            "curve.gif",
        ])
        .env("ANNEVAL_CACHE", common::cache_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(".svg or .png"),
        "{}",
        text(&out.stderr)
    );
}
