//! Exact nearest-neighbour ground truth by brute force.
//!
//! The bulk of the work is a matrix product (queries × baseᵀ, single
//! precision, through the `matrixmultiply` crate's SIMD kernels), which ranks
//! every base point for every query by an *approximate* score. Each query
//! keeps its best `k + MARGIN` candidates by that score; those are then
//! re-ranked by their exact f64 distance, ties broken by id, and the best `k`
//! kept. The margin absorbs single-precision rounding in the product.
//! Query blocks are spread over all cores.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Metric, normalised};

/// Candidates kept beyond `k` before exact re-ranking.
const MARGIN: usize = 32;
/// Queries per matrix product (one task for one thread).
const QUERY_BLOCK: usize = 256;
/// Base rows per matrix product.
const BASE_BLOCK: usize = 1024;

/// The true `k` nearest neighbours of each query, nearest first.
#[derive(Clone, Debug, PartialEq)]
pub struct GroundTruth {
    pub k: usize,
    /// `queries × k` ids into the base set.
    pub neighbors: Vec<u32>,
    /// The matching true distances (L2, or 1 - cosine).
    pub distances: Vec<f32>,
}

/// Computes the `k` nearest base points (`train`) of every query (`test`),
/// both row-major with `dim` columns. `progress` is told how many queries are
/// done, from any thread.
pub fn compute(
    train: &[f32],
    test: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> GroundTruth {
    let n = train.len() / dim;
    let q = test.len() / dim;
    let k = k.min(n);
    let keep = (k + MARGIN).min(n);

    // Score = what orders points like the true distance, up to a per-query
    // constant: |x|² - 2 q·x for L2, -q̂·x̂ for cosine.
    let (base, queries, base_bias): (Vec<f32>, Vec<f32>, Vec<f32>) = match metric {
        Metric::Euclidean => {
            let norms = train
                .chunks_exact(dim)
                .map(|r| r.iter().map(|x| x * x).sum())
                .collect();
            (train.to_vec(), test.to_vec(), norms)
        }
        Metric::Angular => (normalised(train, dim), normalised(test, dim), vec![0.0; n]),
    };
    let dot_weight = match metric {
        Metric::Euclidean => -2.0,
        Metric::Angular => -1.0,
    };

    let mut neighbors = vec![0u32; q * k];
    let mut distances = vec![0f32; q * k];
    let next_block = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let out = Mutex::new((&mut neighbors, &mut distances));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut scores = vec![0f32; QUERY_BLOCK * BASE_BLOCK];
                let mut cands: Vec<Vec<(f32, u32)>> = vec![Vec::new(); QUERY_BLOCK];
                let mut thresholds = vec![f32::INFINITY; QUERY_BLOCK];
                loop {
                    let block = next_block.fetch_add(1, Ordering::Relaxed);
                    let q0 = block * QUERY_BLOCK;
                    if q0 >= q {
                        break;
                    }
                    let qn = QUERY_BLOCK.min(q - q0);
                    cands.iter_mut().for_each(Vec::clear);
                    thresholds.fill(f32::INFINITY);
                    for b0 in (0..n).step_by(BASE_BLOCK) {
                        let bn = BASE_BLOCK.min(n - b0);
                        // scores[i][j] = dot(query q0+i, base b0+j)
                        // SAFETY: the pointers and strides describe in-bounds
                        // row-major matrices of the stated shapes (qn×dim,
                        // bn×dim read transposed, qn×bn out).
                        unsafe {
                            matrixmultiply::sgemm(
                                qn,
                                dim,
                                bn,
                                1.0,
                                queries[q0 * dim..].as_ptr(),
                                dim as isize,
                                1,
                                base[b0 * dim..].as_ptr(),
                                1,
                                dim as isize,
                                0.0,
                                scores.as_mut_ptr(),
                                bn as isize,
                                1,
                            );
                        }
                        for i in 0..qn {
                            let row = &scores[i * bn..][..bn];
                            let (cand, threshold) = (&mut cands[i], &mut thresholds[i]);
                            for (j, &dot) in row.iter().enumerate() {
                                let score = base_bias[b0 + j] + dot_weight * dot;
                                if score < *threshold {
                                    cand.push((score, (b0 + j) as u32));
                                    if cand.len() >= 2 * keep {
                                        *threshold = shrink(cand, keep);
                                    }
                                }
                            }
                        }
                    }
                    let mut rows = Vec::with_capacity(qn);
                    for (i, cand) in cands.iter_mut().take(qn).enumerate() {
                        shrink(cand, keep);
                        let query = &test[(q0 + i) * dim..][..dim];
                        rows.push(exact_top_k(cand, query, train, dim, metric, k));
                    }
                    let mut guard = out.lock().expect("no thread panics holding the lock");
                    for (i, row) in rows.into_iter().enumerate() {
                        for (j, (dist, id)) in row.into_iter().enumerate() {
                            guard.0[(q0 + i) * k + j] = id;
                            guard.1[(q0 + i) * k + j] = dist as f32;
                        }
                    }
                    drop(guard);
                    progress(done.fetch_add(qn, Ordering::Relaxed) + qn);
                }
            });
        }
    });
    GroundTruth {
        k,
        neighbors,
        distances,
    }
}

/// Keeps the `keep` lowest scores of `cand` (unordered); returns the highest
/// score kept, the new bar for entry.
fn shrink(cand: &mut Vec<(f32, u32)>, keep: usize) -> f32 {
    if cand.len() > keep {
        cand.select_nth_unstable_by(keep - 1, |a, b| a.0.total_cmp(&b.0));
        cand.truncate(keep);
    }
    cand.iter().map(|c| c.0).fold(f32::NEG_INFINITY, f32::max)
}

fn exact_top_k(
    cand: &[(f32, u32)],
    query: &[f32],
    train: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
) -> Vec<(f64, u32)> {
    let mut exact: Vec<(f64, u32)> = cand
        .iter()
        .map(|&(_, id)| {
            let row = &train[id as usize * dim..][..dim];
            (metric.distance(query, row), id)
        })
        .collect();
    exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    exact.truncate(k);
    exact
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive(
        train: &[f32],
        query: &[f32],
        dim: usize,
        metric: Metric,
        k: usize,
    ) -> Vec<(f64, u32)> {
        let mut all: Vec<(f64, u32)> = train
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| (metric.distance(query, r), i as u32))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all.truncate(k);
        all
    }

    #[test]
    fn agrees_with_naive_search() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for metric in [Metric::Euclidean, Metric::Angular] {
            let (n, q, dim, k) = (3000, 300, 17, 100);
            let train: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let test: Vec<f32> = (0..q * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let gt = compute(&train, &test, dim, metric, k, &|_| {});
            for i in 0..q {
                let want = naive(&train, &test[i * dim..][..dim], dim, metric, k);
                for (j, &(want_dist, want_id)) in want.iter().enumerate() {
                    let (id, dist) = (gt.neighbors[i * k + j], gt.distances[i * k + j]);
                    // Ids agree, or the distances tie within 1e-4.
                    assert!(
                        id == want_id || (dist as f64 - want_dist).abs() < 1e-4,
                        "{metric} query {i} rank {j}: got {id} ({dist}), want {want_id} ({want_dist})"
                    );
                }
            }
        }
    }

    #[test]
    fn k_is_capped_by_the_base_size() {
        let gt = compute(&[0.0, 1.0, 2.0], &[1.1], 1, Metric::Euclidean, 100, &|_| {});
        assert_eq!(gt.k, 3);
        assert_eq!(gt.neighbors, vec![1, 2, 0]);
    }
}
