//! Synthetic datasets made from a seed, with brute-force ground truth of
//! depth 100:
//! - [`Blobs`]: ann-benchmarks' "random" sets, made the way its
//!   `random_float` recipe makes them: Gaussian blobs (unit standard
//!   deviation around centres drawn uniformly in a ±10 box, points spread
//!   evenly over the centres, shuffled), 10% held out as queries. Their
//!   blobs lie far apart and hold a few hundred points each, so a graph
//!   search finds every neighbour at the smallest `ef`: recall is 0.97–0.99
//!   from ef = 1, and the reward band is never crossed.
//! - [`Embedding`]: sets made to be as hard for graph search as real
//!   embeddings, so a reference kernel's curve crosses the reward band with
//!   several points inside it. Each cluster lies near a subspace of its own
//!   with a decaying spectrum (a few strong directions, many weak ones, as a
//!   PCA of real embeddings shows), clusters overlap, and their sizes follow
//!   a Zipf law; queries come from the same distribution as the base.
//!
//! The draws come from ChaCha8 seeded with the recipe's seed, so a name always
//! means the same bytes; they are not the bytes scikit-learn's or numpy's
//! generators would produce.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Dataset, Metric, ground_truth};

/// How a synthetic dataset is made (the registry's `synthetic` object; the
/// fields tell the recipes apart).
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum Recipe {
    Blobs(Blobs),
    Embedding(Embedding),
}

impl Recipe {
    pub fn seed(&self) -> u64 {
        match self {
            Recipe::Blobs(b) => b.seed,
            Recipe::Embedding(e) => e.seed,
        }
    }

    /// (base points, queries, dimension) of what the recipe makes.
    pub fn shape(&self) -> (usize, usize, usize) {
        match self {
            Recipe::Blobs(b) => {
                let test = b.test_points();
                (b.points - test, test, b.dim)
            }
            Recipe::Embedding(e) => (e.points - e.queries, e.queries, e.dim),
        }
    }

    /// Makes the dataset `name` with ground truth (`progress` counts queries).
    pub fn make(&self, name: &str, metric: Metric, progress: &(dyn Fn(usize) + Sync)) -> Dataset {
        let (all, (train, _, dim)) = match self {
            Recipe::Blobs(b) => (b.points(), self.shape()),
            Recipe::Embedding(e) => (e.points(), self.shape()),
        };
        let (train, test) = all.split_at(train * dim);
        let gt = ground_truth::compute(train, test, dim, metric, GT_DEPTH, progress);
        Dataset::with_truth(name, metric, dim, train.to_vec(), test.to_vec(), gt)
    }
}

/// ann-benchmarks' `random_float` recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blobs {
    pub points: usize,
    pub dim: usize,
    pub centres: usize,
    pub seed: u64,
}

/// Depth of the ground truth stored with every dataset, as ann-benchmarks does.
pub const GT_DEPTH: usize = 100;
/// Fraction of points held out as queries.
const TEST_FRACTION: f64 = 0.1;
const CENTRE_BOX: f64 = 10.0;

impl Blobs {
    /// The points, shuffled, row-major.
    fn points(&self) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let centres: Vec<f64> = (0..self.centres * self.dim)
            .map(|_| rng.random_range(-CENTRE_BOX..CENTRE_BOX))
            .collect();
        let mut rows: Vec<Vec<f32>> = Vec::with_capacity(self.points);
        for c in 0..self.centres {
            // The first points % centres centres get one extra point.
            let count = self.points / self.centres + usize::from(c < self.points % self.centres);
            let centre = &centres[c * self.dim..][..self.dim];
            for _ in 0..count {
                let row = centre
                    .iter()
                    .map(|m| {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        (m + z) as f32
                    })
                    .collect();
                rows.push(row);
            }
        }
        rows.shuffle(&mut rng);
        rows.concat()
    }

    fn test_points(&self) -> usize {
        (self.points as f64 * TEST_FRACTION).round() as usize
    }
}

/// Embedding-like clusters: see the module's documentation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedding {
    /// Base points and queries together.
    pub points: usize,
    /// How many of them (drawn last) are queries.
    pub queries: usize,
    pub dim: usize,
    /// The dimension of each cluster's subspace.
    pub intrinsic: usize,
    pub clusters: usize,
    /// Standard deviation of the cluster centres around the origin, per
    /// coordinate: below about 1 the clusters overlap.
    pub spread: f64,
    /// The variance along a cluster's i-th direction is i^-decay.
    pub decay: f64,
    /// Standard deviation of the isotropic noise off the subspace.
    pub noise: f64,
    /// Cluster sizes are proportional to rank^-zipf.
    pub zipf: f64,
    pub seed: u64,
}

impl Embedding {
    /// The points, shuffled, row-major.
    fn points(&self) -> Vec<f32> {
        let (dim, intrinsic) = (self.dim, self.intrinsic.clamp(1, self.dim));
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut rows: Vec<Vec<f32>> = Vec::with_capacity(self.points);
        let scales: Vec<f64> = (1..=intrinsic)
            .map(|i| (i as f64).powf(-self.decay / 2.0))
            .collect();
        for count in zipf_counts(self.points, self.clusters.max(1), self.zipf) {
            let centre: Vec<f64> = (0..dim).map(|_| self.spread * normal(&mut rng)).collect();
            let basis = orthonormal_basis(dim, intrinsic, &mut rng);
            for _ in 0..count {
                let mut x = centre.clone();
                for (direction, scale) in basis.iter().zip(&scales) {
                    let z = scale * normal(&mut rng);
                    for (xi, bi) in x.iter_mut().zip(direction) {
                        *xi += z * bi;
                    }
                }
                rows.push(
                    x.iter()
                        .map(|xi| (xi + self.noise * normal(&mut rng)) as f32)
                        .collect(),
                );
            }
        }
        rows.shuffle(&mut rng);
        rows.concat()
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// `n` points over `clusters` clusters in proportion to rank^-zipf, every
/// cluster at least one point when there are enough (largest first).
fn zipf_counts(n: usize, clusters: usize, zipf: f64) -> Vec<usize> {
    let weights: Vec<f64> = (1..=clusters).map(|r| (r as f64).powf(-zipf)).collect();
    let total: f64 = weights.iter().sum();
    let mut counts: Vec<usize> = weights
        .iter()
        .map(|w| ((n as f64 * w / total).floor() as usize).max(usize::from(n >= clusters)))
        .collect();
    // Whatever rounding left over (or took too much) goes to the largest.
    let assigned: usize = counts.iter().sum();
    if assigned <= n {
        counts[0] += n - assigned;
    } else {
        counts[0] -= assigned - n;
    }
    counts
}

/// `k` orthonormal vectors of dimension `dim` (Gram–Schmidt on Gaussian
/// draws, which makes a uniformly random subspace).
fn orthonormal_basis(dim: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(k);
    while basis.len() < k {
        let mut v: Vec<f64> = (0..dim).map(|_| normal(rng)).collect();
        for b in &basis {
            let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        // A draw (numerically) inside the span so far is drawn again.
        if norm > 1e-6 {
            basis.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    basis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_the_recipe_shape() {
        let small = Blobs {
            points: 1000,
            dim: 8,
            centres: 7,
            seed: 1,
        };
        let recipe = Recipe::Blobs(small);
        let a = recipe.make("a", Metric::Euclidean, &|_| {});
        let b = recipe.make("a", Metric::Euclidean, &|_| {});
        assert!(a == b, "same seed, same dataset");
        assert_eq!((a.n_train(), a.n_test(), a.gt_k), (900, 100, 100));
        assert_eq!(recipe.shape(), (900, 100, 8));
        assert_eq!(a.validate(), Ok(()));
        let other = Recipe::Blobs(Blobs { seed: 2, ..small }).make("a", Metric::Euclidean, &|_| {});
        assert_ne!(a.train, other.train);
    }

    fn embedding(seed: u64) -> Embedding {
        Embedding {
            points: 1100,
            queries: 100,
            dim: 16,
            intrinsic: 4,
            clusters: 5,
            spread: 0.5,
            decay: 1.0,
            noise: 0.01,
            zipf: 1.0,
            seed,
        }
    }

    #[test]
    fn embedding_sets_are_reproducible_and_shaped_as_asked() {
        let recipe = Recipe::Embedding(embedding(3));
        let a = recipe.make("e", Metric::Euclidean, &|_| {});
        assert!(a == recipe.make("e", Metric::Euclidean, &|_| {}));
        assert_eq!((a.n_train(), a.n_test(), a.dim), (1000, 100, 16));
        assert_eq!(a.validate(), Ok(()));
        let other = Recipe::Embedding(embedding(4)).make("e", Metric::Euclidean, &|_| {});
        assert_ne!(a.train, other.train);
    }

    #[test]
    fn embedding_points_lie_near_low_dimensional_subspaces() {
        // One cluster, 4 intrinsic directions in 16, tiny noise: the sample
        // covariance has 4 large eigenvalues and 12 at the noise floor. Its
        // trace off the subspace is 12 × noise², against Σ i^-1 ≈ 2.08 on it.
        let e = Embedding {
            clusters: 1,
            spread: 0.0,
            ..embedding(5)
        };
        let pts = e.points();
        let n = e.points as f64;
        let mean: Vec<f64> = (0..16)
            .map(|j| {
                pts.iter()
                    .skip(j)
                    .step_by(16)
                    .map(|&x| x as f64)
                    .sum::<f64>()
                    / n
            })
            .collect();
        let total: f64 = pts
            .chunks_exact(16)
            .map(|r| {
                r.iter()
                    .zip(&mean)
                    .map(|(&x, m)| (x as f64 - m).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / n;
        let want = (1..=4).map(|i| 1.0 / i as f64).sum::<f64>() + 16.0 * 0.01f64.powi(2);
        assert!(
            (total - want).abs() / want < 0.15,
            "total variance {total}, expected {want}"
        );
    }

    #[test]
    fn cluster_sizes_follow_the_zipf_law_and_add_up() {
        let counts = zipf_counts(1000, 4, 1.0);
        assert_eq!(counts.iter().sum::<usize>(), 1000);
        // 1 : 1/2 : 1/3 : 1/4 of 1000 / 2.083.
        assert_eq!(&counts[1..], &[240, 160, 120]);
        assert_eq!(zipf_counts(3, 5, 1.0).iter().sum::<usize>(), 3);
        let flat = zipf_counts(10, 5, 0.0);
        assert_eq!(flat, vec![2, 2, 2, 2, 2]);
    }

    #[test]
    fn bases_are_orthonormal() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let b = orthonormal_basis(12, 12, &mut rng);
        for (i, u) in b.iter().enumerate() {
            for (j, v) in b.iter().enumerate() {
                let dot: f64 = u.iter().zip(v).map(|(x, y)| x * y).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-9);
            }
        }
    }
}
