//! Datasets by name, as ann-benchmarks names them: what each is and how to
//! make it.

use anyhow::{Result, bail};

use super::synthetic::Blobs;
use super::{Dataset, Metric};

/// How a registered dataset comes to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Generated from a seed (ann-benchmarks' `random_float` recipe).
    Synthetic(Blobs),
}

#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub name: &'static str,
    pub metric: Metric,
    pub dim: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub source: Source,
}

const fn synthetic(name: &'static str, blobs: Blobs, metric: Metric) -> Entry {
    let n_test = blobs.points / 10;
    Entry {
        name,
        metric,
        dim: blobs.dim,
        n_train: blobs.points - n_test,
        n_test,
        source: Source::Synthetic(blobs),
    }
}

/// Every registered dataset.
pub const REGISTRY: &[Entry] = &[
    synthetic("random-xs-20-euclidean", Blobs::XS, Metric::Euclidean),
    synthetic("random-xs-20-angular", Blobs::XS, Metric::Angular),
    synthetic("random-s-100-euclidean", Blobs::S, Metric::Euclidean),
    synthetic("random-s-100-angular", Blobs::S, Metric::Angular),
];

/// The dataset scored when none is named.
pub const DEFAULT_DATASET: &str = "random-xs-20-euclidean";

pub fn lookup(name: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name)
}

/// Makes a registered dataset in memory (`progress` counts ground-truth
/// queries done).
pub fn make(name: &str, progress: &(dyn Fn(usize) + Sync)) -> Result<Dataset> {
    let Some(entry) = lookup(name) else {
        bail!(
            "unknown dataset {name:?}; known: {}",
            REGISTRY
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    match entry.source {
        Source::Synthetic(blobs) => Ok(blobs.make(entry.name, entry.metric, progress)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_shapes_match_what_is_made() {
        let d = make("random-xs-20-angular", &|_| {}).unwrap();
        let e = lookup("random-xs-20-angular").unwrap();
        assert_eq!(
            (d.dim, d.n_train(), d.n_test(), d.metric),
            (e.dim, e.n_train, e.n_test, e.metric)
        );
        assert_eq!(d.validate(), Ok(()));
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = make("sift-1b", &|_| {}).unwrap_err().to_string();
        assert!(err.contains("random-xs-20-euclidean"), "{err}");
    }
}
