//! Smaller datasets for fast scoring (`--max-base`, `--max-queries`).
//!
//! The first N base points and the first Q queries are kept. Cutting only
//! queries keeps their stored ground truth; cutting the base makes the stored
//! neighbours wrong, so the ground truth is recomputed by brute force and
//! cached in the cache directory under a digest of the vectors kept, so it is
//! computed once per (file, N, Q).

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::{Dataset, ground_truth, hdf5};
use crate::template::hex;

/// `data` cut to at most `max_base` base points and `max_queries` queries.
pub fn subsample(
    mut data: Dataset,
    max_base: Option<usize>,
    max_queries: Option<usize>,
    cache_dir: &Path,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Dataset> {
    if let Some(q) = max_queries.filter(|&q| q < data.n_test()) {
        data.test.truncate(q * data.dim);
        data.neighbors.truncate(q * data.gt_k);
        data.distances.truncate(q * data.gt_k);
    }
    let Some(n) = max_base.filter(|&n| n < data.n_train()) else {
        return Ok(data);
    };
    data.train.truncate(n * data.dim);
    let depth = data.gt_k.min(n);

    let mut h = Sha256::new();
    h.update(format!(
        "anneval-truth-v1|{}|{}|{depth}|",
        data.metric, data.dim
    ));
    for x in data.train.iter().chain(&data.test) {
        h.update(x.to_le_bytes());
    }
    let cached = cache_dir
        .join("truth")
        .join(format!("{}.hdf5", &hex(&h.finalize())[..32]));
    if let Ok(found) = hdf5::read(&cached)
        && found.train == data.train
        && found.test == data.test
        && found.gt_k == depth
    {
        data.neighbors = found.neighbors;
        data.distances = found.distances;
        data.gt_k = depth;
        return Ok(data);
    }
    let gt = ground_truth::compute(
        &data.train,
        &data.test,
        data.dim,
        data.metric,
        depth,
        progress,
    );
    data.neighbors = gt.neighbors;
    data.distances = gt.distances;
    data.gt_k = gt.k;
    hdf5::write(&cached, &data).with_context(|| {
        format!(
            "caching the recomputed ground truth at {}",
            cached.display()
        )
    })?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::registry;

    #[test]
    fn cutting_the_base_recomputes_and_caches_the_truth() {
        let cache = tempfile::tempdir().unwrap();
        let full = registry::make("random-xs-20-euclidean", &|_| {}).unwrap();
        let computed = std::sync::atomic::AtomicUsize::new(0);
        let count = |_: usize| {
            computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let cut = subsample(full.clone(), Some(2000), Some(100), cache.path(), &count).unwrap();
        assert_eq!((cut.n_train(), cut.n_test(), cut.gt_k), (2000, 100, 100));
        assert_eq!(cut.validate(), Ok(()));
        assert!(cut.neighbors.iter().all(|&id| id < 2000));
        let want = ground_truth::compute(&cut.train, &cut.test, 20, cut.metric, 100, &|_| {});
        assert_eq!(cut.neighbors, want.neighbors);
        let calls = computed.load(std::sync::atomic::Ordering::Relaxed);
        assert!(calls > 0);

        let again = subsample(full.clone(), Some(2000), Some(100), cache.path(), &count).unwrap();
        assert!(again == cut, "the cached truth is the computed one");
        assert_eq!(
            computed.load(std::sync::atomic::Ordering::Relaxed),
            calls,
            "served from cache"
        );
    }

    #[test]
    fn cutting_only_queries_keeps_the_stored_truth() {
        let cache = tempfile::tempdir().unwrap();
        let full = registry::make("random-xs-20-angular", &|_| {}).unwrap();
        let cut = subsample(full.clone(), None, Some(10), cache.path(), &|_| {}).unwrap();
        assert_eq!(cut.n_test(), 10);
        assert_eq!(cut.neighbors[..], full.neighbors[..10 * 100]);
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
        let same = subsample(full.clone(), Some(1_000_000), None, cache.path(), &|_| {}).unwrap();
        assert!(same == full, "a cut beyond the size changes nothing");
    }
}
