//! ann-benchmarks' synthetic "random" sets, made the way its `random_float`
//! recipe makes them: Gaussian blobs (unit standard deviation around centres
//! drawn uniformly in a ±10 box, points spread evenly over the centres,
//! shuffled), 10% held out as queries, brute-force ground truth of depth 100.
//!
//! The draws come from ChaCha8 seeded with the recipe's seed, so a name always
//! means the same bytes; they are not the bytes scikit-learn's generator
//! would produce.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Dataset, Metric, ground_truth};

/// One synthetic recipe.
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

    /// Makes the dataset `name` with ground truth (`progress` counts queries).
    pub fn make(&self, name: &str, metric: Metric, progress: &(dyn Fn(usize) + Sync)) -> Dataset {
        let all = self.points();
        let n_test = (self.points as f64 * TEST_FRACTION).round() as usize;
        let split = (self.points - n_test) * self.dim;
        let (train, test) = (all[..split].to_vec(), all[split..].to_vec());
        let gt = ground_truth::compute(&train, &test, self.dim, metric, GT_DEPTH, progress);
        Dataset::with_truth(name, metric, self.dim, train, test, gt)
    }
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
        let a = small.make("a", Metric::Euclidean, &|_| {});
        let b = small.make("a", Metric::Euclidean, &|_| {});
        assert!(a == b, "same seed, same dataset");
        assert_eq!((a.n_train(), a.n_test(), a.gt_k), (900, 100, 100));
        assert_eq!(a.validate(), Ok(()));
        let other = Blobs { seed: 2, ..small }.make("a", Metric::Euclidean, &|_| {});
        assert_ne!(a.train, other.train);
    }
}
