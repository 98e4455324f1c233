//! The `anneval` binary: exit codes, messages, the JSON file.

mod common;

use std::process::{Command, Output};

fn anneval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anneval"))
        .args(args)
        .env("ANNEVAL_CACHE", common::cache_dir())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn score_writes_json_and_exits_zero_for_ok() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    let out = anneval(&[
        "score",
        "--ef",
        "10,40",
        "--runs",
        "1",
        "--breakdown",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("reward:") && stdout.contains("verdict: ok"),
        "{stdout}"
    );
    // `--breakdown`: a row per phase and the rest, each in seconds and as a
    // share of the run, the shares adding up to the run.
    let breakdown = &stdout[stdout.find("where the run's").expect(&stdout)..];
    let rows: Vec<(String, f64, f64)> = breakdown
        .lines()
        .skip(1)
        .map(|line| {
            let (name, rest) = line.trim().rsplit_once(" s ").expect(line);
            let share = rest.trim().trim_end_matches('%').parse().expect(line);
            let seconds = name.split_whitespace().last().unwrap().parse().expect(line);
            let name = name.rsplit_once(' ').unwrap().0.trim().to_string();
            (name, seconds, share)
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "compile",
            "load",
            "build",
            "restores",
            "probes",
            "timed calls",
            "fuel",
            "checks",
            "other"
        ],
        "{breakdown}"
    );
    let shares: f64 = rows.iter().map(|(_, _, share)| share).sum();
    assert!((shares - 100.0).abs() < 1.0, "{breakdown}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["engine"], "wasm");
    assert_eq!(v["dataset"], anneval::dataset::registry::DEFAULT_DATASET);
    assert_eq!(v["curve"].as_array().unwrap().len(), 2);
    assert!(v["reward"].as_f64().unwrap() > 0.0);
    for key in [
        "message",
        "qps_at_recall",
        "build_seconds",
        "restore_seconds",
        "index_bytes",
        "fuel_per_query",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    // The JSON's `wall`: the same phases, each measured, none longer than
    // the run, and the breakdown prints them.
    let wall = &v["wall"];
    let seconds = v["seconds"].as_f64().unwrap();
    let mut sum = 0.0;
    for (key, (name, printed, _)) in [
        "compile", "load", "build", "restores", "probes", "timed", "fuel", "checks",
    ]
    .iter()
    .zip(&rows)
    {
        let s = wall[key]
            .as_f64()
            .unwrap_or_else(|| panic!("wall.{key}: {wall}"));
        assert!(
            (s - printed).abs() < 0.0015,
            "{key} {s} printed as {name} {printed}"
        );
        sum += s;
    }
    for key in ["load", "build", "restores", "probes", "timed", "fuel"] {
        assert!(wall[key].as_f64().unwrap() > 0.0, "wall.{key}: {wall}");
    }
    assert!(
        sum <= seconds + 1e-6,
        "phases {sum} s in a run of {seconds} s"
    );
}

#[test]
fn a_failing_verdict_exits_one_and_still_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("kernel.rs");
    std::fs::write(&kernel, "this is not rust").unwrap();
    let json = dir.path().join("result.json");
    let out = anneval(&[
        "score",
        kernel.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["verdict"], "compile_error");
    assert_eq!(v["reward"], 0.0);
}

#[test]
fn usage_errors_exit_two_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["score", "/nonexistent/kernel.rs"],
            "reading candidate /nonexistent/kernel.rs",
        ),
        (
            &["score", "--dataset", "no-such-set"],
            "unknown dataset \"no-such-set\"",
        ),
        (
            &["score", "--ef", "10,abc"],
            "\"abc\" is not a positive integer",
        ),
        (&["score", "--band", "0.9,0.8"], "is not a recall band"),
        (&["score", "--k", "500"], "ground truth of depth 100"),
        (
            &["score", "kernel.txt"],
            "expected a kernel in Rust (.rs), C (.c) or C++ (.cpp), or a WebAssembly component (.wasm)",
        ),
        (&["score", "--param", "m"], "is not KEY=VALUE"),
    ];
    for (args, expected) in cases {
        let out = anneval(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// `--template DIR`: the codebase as it is, and one file of it replaced (a
/// file, a folder, a tar archive), each scored in one line; a file the manifest does not let a candidate
/// replace is a usage error naming it.
#[test]
fn score_with_a_codebase_template() {
    let template = common::repo_root().join("tests/templates/flatscan");
    let template = template.to_str().unwrap();
    let changed = common::repo_root().join("tests/templates/flatscan-sdk/flatscan/distance.hpp");
    let store = common::repo_root().join("tests/templates/flatscan/flatscan/store.hpp");
    let quick = [
        "--dataset",
        "random-xs-20-euclidean",
        "--ef",
        "10",
        "--runs",
        "1",
        "--no-fuel",
        "-q",
    ];
    let folder = common::repo_root().join("tests/templates/flatscan-sdk");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("changes.tar.gz");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&folder)
        .arg("-czf")
        .arg(&archive)
        .arg("flatscan")
        .status()
        .unwrap();
    assert!(tar.success());
    let runs: [(Vec<&str>, &str); 5] = [
        (vec![], "template:flatscan"),
        (vec![changed.to_str().unwrap()], "distance.hpp"),
        (vec![folder.to_str().unwrap()], "flatscan-sdk"),
        (vec![archive.to_str().unwrap()], "changes.tar.gz"),
        (vec!["reference"], "template:flatscan"),
    ];
    for (candidate, origin) in runs {
        let mut args = vec!["score", "--template", template];
        args.extend(&candidate);
        args.extend(quick);
        let out = anneval(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {stdout}{}",
            stderr(&out)
        );
        assert!(stdout.starts_with("ok reward "), "{stdout}");
        assert!(stdout.trim_end().ends_with(origin), "{stdout}");
    }
    let out = anneval(&["score", "--template", template, store.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("template flatscan has no replaceable file named \"store.hpp\""),
        "{}",
        stderr(&out)
    );
}
