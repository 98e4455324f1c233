//! Datasets by name, as ann-benchmarks names them: the registry in
//! `datasets/registry.json` (embedded in the binary), and how a name or a path
//! becomes a [`Dataset`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::synthetic::Recipe;
use super::{Dataset, Metric, hdf5};

/// One registered dataset.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub metric: Metric,
    pub dim: usize,
    pub train: usize,
    pub test: usize,
    /// Made from a seed (ann-benchmarks' random sets, anneval's embedding-like
    /// sets).
    pub synthetic: Option<Recipe>,
    /// Where ann-benchmarks publishes it.
    pub url: Option<String>,
    /// The expected SHA-256 of the download, when known; otherwise the
    /// file's layout is validated.
    pub sha256: Option<String>,
    /// An importer that builds it from local files (`anneval datasets import`).
    pub import: Option<String>,
}

#[derive(Deserialize)]
struct Registry {
    datasets: Vec<Entry>,
}

impl Entry {
    /// Where a made, fetched or imported copy lives in the data directory.
    pub fn local_path(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(format!("{}.hdf5", self.name))
    }

    /// How the dataset comes to be, in a few words.
    pub fn source(&self) -> String {
        let mut ways = Vec::new();
        if let Some(b) = &self.synthetic {
            ways.push(format!("synthetic (seed {})", b.seed()));
        }
        if let Some(i) = &self.import {
            ways.push(format!("import {i}"));
        }
        if self.url.is_some() {
            ways.push("download".into());
        }
        ways.join(", ")
    }
}

/// Every registered dataset.
pub fn all() -> &'static [Entry] {
    static REGISTRY: OnceLock<Vec<Entry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let text = include_str!("../../../datasets/registry.json");
        let registry: Registry =
            serde_json::from_str(text).expect("datasets/registry.json is valid (tested)");
        registry.datasets
    })
}

/// The dataset scored when none is named: small enough to score in seconds,
/// hard enough that the reference kernel's curve crosses the reward band.
pub const DEFAULT_DATASET: &str = "embed-s-64-euclidean";

pub fn lookup(name: &str) -> Option<&'static Entry> {
    all().iter().find(|e| e.name == name)
}

/// Whether `spec` names a file rather than a registered dataset.
pub fn is_path(spec: &str) -> bool {
    spec.ends_with(".hdf5") || spec.ends_with(".h5") || spec.contains('/')
}

/// Opens a dataset by registered name or by path to an `.hdf5` file. A name
/// is looked up in `data_dir` first; synthetic sets not found there are made
/// in memory (`progress` counts ground-truth queries).
pub fn open(spec: &str, data_dir: &Path, progress: &(dyn Fn(usize) + Sync)) -> Result<Dataset> {
    if is_path(spec) {
        return hdf5::read(Path::new(spec));
    }
    let Some(entry) = lookup(spec) else {
        bail!(
            "unknown dataset {spec:?}: `anneval datasets list` shows the registered names, \
             or give the path of an .hdf5 file"
        );
    };
    let path = entry.local_path(data_dir);
    if path.exists() {
        return hdf5::read(&path);
    }
    if let Some(recipe) = &entry.synthetic {
        return Ok(recipe.make(&entry.name, entry.metric, progress));
    }
    let mut how = vec![format!("`anneval datasets fetch {}`", entry.name)];
    if let Some(importer) = &entry.import {
        how.insert(0, format!("`anneval datasets import {importer}` (offline)"));
    }
    bail!(
        "dataset {} is not in the data directory {} (set ANNEVAL_DATA to use another): get it with {}",
        entry.name,
        data_dir.display(),
        how.join(" or ")
    )
}

/// Makes a registered synthetic dataset in memory.
pub fn make(name: &str, progress: &(dyn Fn(usize) + Sync)) -> Result<Dataset> {
    match lookup(name) {
        Some(Entry {
            synthetic: Some(recipe),
            metric,
            name,
            ..
        }) => Ok(recipe.make(name, *metric, progress)),
        Some(_) => {
            bail!("{name} is not a synthetic dataset; `anneval datasets fetch {name}` gets it")
        }
        None => bail!(
            "unknown synthetic dataset {name:?}; synthetic ones are: {}",
            all()
                .iter()
                .filter(|e| e.synthetic.is_some())
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_parses_and_is_consistent() {
        let names: Vec<&str> = all().iter().map(|e| e.name.as_str()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate names");
        for e in all() {
            assert!(e.name.ends_with(e.metric.as_str()), "{}", e.name);
            assert!(
                e.synthetic.is_some() || e.url.is_some(),
                "{} has no source",
                e.name
            );
            if let Some(recipe) = &e.synthetic {
                assert_eq!(recipe.shape(), (e.train, e.test, e.dim), "{}", e.name);
            }
        }
        assert!(lookup(DEFAULT_DATASET).unwrap().synthetic.is_some());
    }

    #[test]
    fn registered_shapes_match_what_is_made() {
        let d = make("random-xs-20-angular", &|_| {}).unwrap();
        let e = lookup("random-xs-20-angular").unwrap();
        assert_eq!(
            (d.dim, d.n_train(), d.n_test(), d.metric),
            (e.dim, e.train, e.test, e.metric)
        );
        assert_eq!(d.validate(), Ok(()));
    }

    #[test]
    fn missing_datasets_say_how_to_get_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = open("fashion-mnist-784-euclidean", dir.path(), &|_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("anneval datasets import fashion-mnist"),
            "{err}"
        );
        assert!(
            err.contains("anneval datasets fetch fashion-mnist-784-euclidean"),
            "{err}"
        );
        let err = open("sift-1b", dir.path(), &|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("anneval datasets list"), "{err}");
        let err = open("/nowhere/x.hdf5", dir.path(), &|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nowhere/x.hdf5: no such file"), "{err}");
    }
}
