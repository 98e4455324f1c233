//! Datasets in and out: HDF5 against the real peer library (h5py), bad files,
//! deterministic synthetic sets, downloads from a loopback server, the
//! fashion-mnist import, and subsampled scoring.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anneval::dataset::{Metric, hdf5, import};

/// Debian's Python, which has python3-h5py (scripts/setup installs it).
fn python() -> String {
    std::env::var("ANNEVAL_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

fn peer(args: &[&str]) -> Output {
    let script = common::repo_root().join("tests/h5py_peer.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .expect("running python3 (install python3-h5py: scripts/setup does)");
    assert!(
        out.status.success(),
        "h5py_peer.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn anneval(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anneval"))
        .args(args)
        .env("ANNEVAL_DATA", data_dir)
        .env("ANNEVAL_CACHE", common::cache_dir())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn files_written_the_h5py_way_load() {
    let dir = tempfile::tempdir().unwrap();
    for (file, extra) in [
        ("full.hdf5", None),
        ("only-distance.hdf5", Some("--only-distance")),
    ] {
        let path = dir.path().join(file);
        let mut args = vec!["write", path.to_str().unwrap()];
        args.extend(extra);
        peer(&args);
        let data = hdf5::read(&path).unwrap();
        assert_eq!(
            (data.n_train(), data.n_test(), data.dim, data.gt_k),
            (500, 20, 8, 10)
        );
        assert_eq!(data.metric, Metric::Euclidean);
        // f64 distances written by h5py, read as f32, still ascend and match
        // the vectors.
        let d = Metric::Euclidean
            .distance(data.test_row(0), data.train_row(data.neighbors[0] as usize));
        assert!((d - data.distances[0] as f64).abs() < 1e-5);
    }
}

#[test]
fn files_anneval_writes_have_the_hosted_types_and_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xs.hdf5");
    let data = common::xs20("random-xs-20-angular");
    hdf5::write(&path, data).unwrap();
    let out = peer(&["check", path.to_str().unwrap()]);
    assert!(text(&out.stdout).starts_with("ok"), "{}", text(&out.stdout));
    let back = hdf5::read(&path).unwrap();
    assert_eq!(back.train, data.train);
    assert_eq!(back.test, data.test);
    assert_eq!(back.neighbors, data.neighbors);
    assert_eq!(back.distances, data.distances);
    assert_eq!(back.metric, Metric::Angular);
}

#[test]
fn bad_files_are_refused_with_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("missing-neighbors", "dataset `neighbors`: is missing"),
        (
            "missing-distance-attribute",
            "missing the root attribute `distance`",
        ),
        ("unknown-metric", "unknown distance \"hamming\""),
        (
            "dimension-mismatch",
            "`test` vectors have 5 dimensions but `train` vectors have 8",
        ),
        ("one-dimensional", "expected two non-zero dimensions"),
        ("nan", "train row 3 has a NaN or infinite value"),
        ("infinite", "test row 1 has a NaN or infinite value"),
        ("id-out-of-range", "`neighbors` row 4 holds id 10000"),
        ("negative-id", "`neighbors` row 2 holds id -1"),
        (
            "rows-mismatch",
            "`neighbors` has 5 rows but `test` has 20 queries",
        ),
    ];
    for (kind, expected) in cases {
        let path = dir.path().join(format!("{kind}.hdf5"));
        peer(&["bad", kind, path.to_str().unwrap()]);
        let err = format!("{:#}", hdf5::read(&path).unwrap_err());
        assert!(err.contains(path.to_str().unwrap()), "{kind}: {err}");
        assert!(err.contains(expected), "{kind}: {err}");
    }

    let good = dir.path().join("good.hdf5");
    peer(&["write", good.to_str().unwrap()]);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.hdf5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let not_hdf5 = dir.path().join("not.hdf5");
    std::fs::write(&not_hdf5, b"neither HDF5 nor anything else").unwrap();
    for path in [&truncated, &not_hdf5] {
        let err = format!("{:#}", hdf5::read(path).unwrap_err());
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert!(
            err.contains("not a readable HDF5 file") || err.contains("truncated"),
            "{err}"
        );
    }

    // The CLI says so too, and exits non-zero.
    let out = anneval(
        dir.path(),
        &["score", "--dataset", not_hdf5.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a readable HDF5 file"),
        "{}",
        text(&out.stderr)
    );
    let out = anneval(
        dir.path(),
        &["datasets", "info", truncated.to_str().unwrap()],
    );
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn make_is_deterministic_and_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.hdf5"), dir.path().join("b.hdf5"));
    for out in [&a, &b] {
        let done = anneval(
            dir.path(),
            &[
                "datasets",
                "make",
                "random-xs-20-angular",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(done.status.success(), "{}", text(&done.stderr));
    }
    let (a, b) = (hdf5::read(&a).unwrap(), hdf5::read(&b).unwrap());
    assert!(
        a.train == b.train && a.test == b.test,
        "same seed, same vectors"
    );
    assert!(
        a.neighbors == b.neighbors && a.distances == b.distances,
        "same truth"
    );
    assert_eq!(files_in(dir.path()).len(), 2, "no temporary files left");
    // Made into the data directory, a named dataset is then read from there.
    let done = anneval(dir.path(), &["datasets", "make", "random-xs-20-euclidean"]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let listed = text(&anneval(dir.path(), &["datasets", "list"]).stdout);
    let line = listed
        .lines()
        .find(|l| l.starts_with("random-xs-20-euclidean"))
        .unwrap();
    assert!(line.contains("random-xs-20-euclidean.hdf5"), "{line}");
    let out = anneval(dir.path(), &["datasets", "make", "sift-128-euclidean"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a synthetic dataset"),
        "{}",
        text(&out.stderr)
    );
}

/// Serves each accepted connection one canned response, then stops.
fn serve(responses: Vec<Vec<u8>>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        for response in responses {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(&response);
        }
    });
    (format!("http://{addr}/dataset.hdf5"), handle)
}

fn http_ok(body: &[u8], declared_len: usize) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {declared_len}\r\nContent-Type: application/x-hdf5\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn fetch_downloads_validates_and_never_leaves_half_a_file() {
    let src = tempfile::tempdir().unwrap();
    let good = src.path().join("good.hdf5");
    peer(&["write", good.to_str().unwrap()]);
    let good = std::fs::read(&good).unwrap();

    // A valid file: fetched, validated, in place, reported with its checksum.
    let data_dir = tempfile::tempdir().unwrap();
    let (url, server) = serve(vec![http_ok(&good, good.len())]);
    let out = anneval(
        data_dir.path(),
        &["datasets", "fetch", "mnist-784-euclidean", "--url", &url],
    );
    server.join().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("sha256"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        files_in(data_dir.path()),
        vec![data_dir.path().join("mnist-784-euclidean.hdf5")]
    );
    let out = anneval(
        data_dir.path(),
        &["datasets", "info", "mnist-784-euclidean"],
    );
    assert!(
        text(&out.stdout).contains("valid: 500 base points"),
        "{}",
        text(&out.stdout)
    );

    // Garbage, a broken transfer, an error status, an unreachable server:
    // each a clear error, and nothing left behind.
    let unreachable = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x.hdf5", l.local_addr().unwrap())
    };
    let cases: Vec<(Option<Vec<u8>>, &str)> = vec![
        (
            Some(http_ok(b"<html>not a dataset</html>", 26)),
            "not a valid ann-benchmarks dataset",
        ),
        (Some(http_ok(&good[..good.len() / 2], good.len())), "bytes"),
        (
            Some(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            "404",
        ),
        (None, "offline"),
    ];
    for (response, expected) in cases {
        let data_dir = tempfile::tempdir().unwrap();
        let (url, server) = match response {
            Some(r) => {
                let (url, h) = serve(vec![r]);
                (url, Some(h))
            }
            None => (unreachable.clone(), None),
        };
        let out = anneval(
            data_dir.path(),
            &["datasets", "fetch", "mnist-784-euclidean", "--url", &url],
        );
        if let Some(h) = server {
            h.join().unwrap();
        }
        assert_eq!(
            out.status.code(),
            Some(2),
            "{expected}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(expected),
            "{expected}: {}",
            text(&out.stderr)
        );
        assert!(
            files_in(data_dir.path()).is_empty(),
            "{expected}: {:?}",
            files_in(data_dir.path())
        );
    }
}

#[test]
fn fashion_mnist_imports_from_the_debian_package() {
    let dir = Path::new(import::FASHION_MNIST_DIR);
    assert!(
        dir.is_dir(),
        "{} is missing: install Debian's dataset-fashion-mnist (scripts/setup does)",
        dir.display()
    );
    let data = import::fashion_mnist(dir, &|_| {}).unwrap();
    assert_eq!(
        (data.n_train(), data.n_test(), data.dim, data.gt_k),
        (60_000, 10_000, 784, 100)
    );
    assert_eq!(data.name, "fashion-mnist-784-euclidean");
    assert!(
        data.train
            .iter()
            .all(|&x| (0.0..=255.0).contains(&x) && x.fract() == 0.0)
    );
    // Spot-check the ground truth against a plain scan for a few queries.
    for q in [0, 4321, 9999] {
        let query = data.test_row(q);
        let mut best: Vec<(f64, u32)> = (0..data.n_train())
            .map(|i| {
                (
                    Metric::Euclidean.distance(query, data.train_row(i)),
                    i as u32,
                )
            })
            .collect();
        best.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let stored = data.true_distances(q);
        for (j, (d, _)) in best.iter().take(100).enumerate() {
            assert!((stored[j] as f64 - d).abs() < 1e-3, "query {q} rank {j}");
        }
    }
}

#[test]
fn score_accepts_a_path_and_subsamples_with_fresh_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peer.hdf5");
    peer(&["write", file.to_str().unwrap()]);
    let json = dir.path().join("r.json");
    let out = anneval(
        dir.path(),
        &[
            "score",
            "--dataset",
            file.to_str().unwrap(),
            "--ef",
            "10,40",
            "--runs",
            "1",
            "-q",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Quiet is one line: the verdict and the reward.
    let said = text(&out.stdout);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.starts_with("ok reward "), "{said}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["dataset"], "peer");
    assert_eq!(v["dataset_info"]["n_base"], 500);

    let out = anneval(
        dir.path(),
        &[
            "score",
            "--dataset",
            "random-xs-20-euclidean",
            "--max-base",
            "3000",
            "--max-queries",
            "200",
            "--ef",
            "10,40",
            "--runs",
            "1",
            "-q",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["dataset_info"]["n_base"], 3000);
    assert_eq!(v["dataset_info"]["n_queries"], 200);
    // With the truth recomputed for the smaller base, a good kernel still
    // finds the true neighbours.
    assert!(v["max_recall"].as_f64().unwrap() > 0.99, "{v}");
}
