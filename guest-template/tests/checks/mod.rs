//! The checks every kernel must pass natively, generic over the kernel: it
//! finds the true neighbours on a synthetic clustered set, survives save/load
//! unchanged, and honours `k` and `ef`. `recall.rs` runs them on
//! `src/kernel.rs`, `variants.rs` on every kernel in `variants/`.

use anneval_guest::sdk::{Kernel, Metric, Params, SplitMix64};

/// Gaussian blobs (like ann-benchmarks' random sets), unit-normalised for
/// angular. Returns (base, queries).
fn blobs(
    n: usize,
    queries: usize,
    dim: usize,
    centres: usize,
    metric: Metric,
) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix64::new(1);
    let mut gauss = || {
        // Box-Muller; one value per call is plenty for a test.
        let (u, v) = (1.0 - rng.next_f64(), rng.next_f64());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    };
    let centre: Vec<f32> = (0..centres * dim).map(|_| gauss() * 10.0).collect();
    let mut point = |i: usize| -> Vec<f32> {
        let c = &centre[(i % centres) * dim..][..dim];
        let mut p: Vec<f32> = c.iter().map(|x| x + gauss()).collect();
        if metric == Metric::Angular {
            let norm = p.iter().map(|x| x * x).sum::<f32>().sqrt();
            p.iter_mut().for_each(|x| *x /= norm);
        }
        p
    };
    let base = (0..n).flat_map(&mut point).collect();
    let qs = (n..n + queries).flat_map(&mut point).collect();
    (base, qs)
}

fn brute_force(base: &[f32], query: &[f32], dim: usize, k: usize, metric: Metric) -> Vec<u32> {
    let mut all: Vec<(f32, u32)> = base
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (metric.distance(query, v), i as u32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all.into_iter().take(k).map(|(_, i)| i).collect()
}

fn recall_at<K: Kernel>(
    index: &K,
    base: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    ef: usize,
    metric: Metric,
) -> f64 {
    let mut found = 0;
    let mut out = Vec::new();
    for q in queries.chunks_exact(dim) {
        out.clear();
        index.search(q, k, ef, &mut out);
        assert_eq!(out.len(), k, "search must return k ids");
        let truth = brute_force(base, q, dim, k, metric);
        found += out.iter().filter(|id| truth.contains(id)).count();
    }
    found as f64 / (queries.len() / dim * k) as f64
}

/// Recall@10 at ef = 100 is at least 0.95, for both metrics.
pub fn recall_at_10_is_high_at_ef_100<K: Kernel>() {
    for metric in [Metric::Euclidean, Metric::Angular] {
        let dim = 24;
        let (base, queries) = blobs(10_000, 200, dim, 50, metric);
        let index = K::build(&base, dim, metric, &Params::default());
        let recall = recall_at(&index, &base, &queries, dim, 10, 100, metric);
        assert!(
            recall >= 0.95,
            "{metric:?}: recall@10 at ef=100 is {recall}"
        );
    }
}

/// A saved and loaded index answers exactly as the one that was built.
pub fn save_load_round_trip_answers_identically<K: Kernel>() {
    let dim = 20;
    let (base, queries) = blobs(3_000, 50, dim, 30, Metric::Euclidean);
    let index = K::build(&base, dim, Metric::Euclidean, &Params::default());
    let mut bytes = Vec::new();
    index.save(&mut bytes);
    let restored = K::load(&bytes);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    index.search_batch(&queries, dim, 10, 40, &mut a).unwrap();
    restored
        .search_batch(&queries, dim, 10, 40, &mut b)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 50 * 10);
}

/// More effort never lowers recall, ef = 200 reaches 0.99, and an ef
/// below k behaves as k. With `effort_matters`, ef = 200 must beat ef = 10
/// (an exact kernel's recall is 1 at every ef).
pub fn more_effort_never_hurts_and_ef_below_k_means_k<K: Kernel>(effort_matters: bool) {
    let dim = 16;
    let (base, queries) = blobs(5_000, 100, dim, 40, Metric::Euclidean);
    let index = K::build(
        &base,
        dim,
        Metric::Euclidean,
        &Params::new(vec![("m".into(), "8".into())]),
    );
    let low = recall_at(&index, &base, &queries, dim, 10, 10, Metric::Euclidean);
    let high = recall_at(&index, &base, &queries, dim, 10, 200, Metric::Euclidean);
    if effort_matters {
        assert!(high > low, "ef=200 recall {high} vs ef=10 recall {low}");
    } else {
        assert!(high >= low, "ef=200 recall {high} vs ef=10 recall {low}");
    }
    assert!(high >= 0.99, "ef=200 recall {high}");
    let below = recall_at(&index, &base, &queries, dim, 10, 1, Metric::Euclidean);
    assert_eq!(below, low, "ef=1 must behave as ef=k=10");
}
