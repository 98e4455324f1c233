//! ANN datasets in the ann-benchmarks shape: `train` (the base set), `test`
//! (the queries), and the true `neighbors` and `distances` of every query.

pub mod fetch;
pub mod ground_truth;
pub mod hdf5;
pub mod import;
pub mod registry;
pub mod split;
pub mod subsample;
pub mod synthetic;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a dataset measures distance, as ann-benchmarks names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// True L2 distance.
    Euclidean,
    /// 1 - cosine similarity.
    Angular,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::Angular => "angular",
        }
    }

    /// The true distance, in f64, as ann-benchmarks reports it.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f64 {
        match self {
            Metric::Euclidean => a
                .iter()
                .zip(b)
                .map(|(x, y)| {
                    let d = *x as f64 - *y as f64;
                    d * d
                })
                .sum::<f64>()
                .sqrt(),
            Metric::Angular => {
                let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
                for (x, y) in a.iter().zip(b) {
                    let (x, y) = (*x as f64, *y as f64);
                    ab += x * y;
                    aa += x * x;
                    bb += y * y;
                }
                let norms = (aa * bb).sqrt();
                if norms == 0.0 { 1.0 } else { 1.0 - ab / norms }
            }
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "euclidean" => Ok(Metric::Euclidean),
            "angular" | "cosine" => Ok(Metric::Angular),
            other => Err(format!(
                "unknown distance {other:?} (expected \"euclidean\" or \"angular\")"
            )),
        }
    }
}

/// A dataset in memory. Vectors are row-major f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub metric: Metric,
    pub dim: usize,
    pub train: Vec<f32>,
    pub test: Vec<f32>,
    /// `n_test() × gt_k` ids into `train`, nearest first.
    pub neighbors: Vec<u32>,
    /// The matching true distances, ascending.
    pub distances: Vec<f32>,
    pub gt_k: usize,
    /// Which of the dataset's queries `test` holds.
    pub queries: split::QuerySet,
}

/// What a report says about the dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub metric: Metric,
    pub dim: usize,
    pub n_base: usize,
    pub n_queries: usize,
    /// `dev`, `holdout` or `all` of the dataset's queries.
    pub queries: split::QuerySet,
}

impl Dataset {
    /// A dataset of all its queries, with their ground truth.
    pub fn with_truth(
        name: &str,
        metric: Metric,
        dim: usize,
        train: Vec<f32>,
        test: Vec<f32>,
        truth: ground_truth::GroundTruth,
    ) -> Dataset {
        Dataset {
            name: name.to_string(),
            metric,
            dim,
            train,
            test,
            neighbors: truth.neighbors,
            distances: truth.distances,
            gt_k: truth.k,
            queries: split::QuerySet::All,
        }
    }

    pub fn n_train(&self) -> usize {
        self.train.len() / self.dim
    }

    pub fn n_test(&self) -> usize {
        self.test.len() / self.dim
    }

    pub fn train_row(&self, i: usize) -> &[f32] {
        &self.train[i * self.dim..][..self.dim]
    }

    pub fn test_row(&self, i: usize) -> &[f32] {
        &self.test[i * self.dim..][..self.dim]
    }

    /// The true distances of query `i`, nearest first.
    pub fn true_distances(&self, i: usize) -> &[f32] {
        &self.distances[i * self.gt_k..][..self.gt_k]
    }

    pub fn info(&self) -> DatasetInfo {
        DatasetInfo {
            name: self.name.clone(),
            metric: self.metric,
            dim: self.dim,
            n_base: self.n_train(),
            n_queries: self.n_test(),
            queries: self.queries,
        }
    }

    /// Checks the invariants every consumer relies on; the message names the
    /// problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.dim == 0 {
            return Err("dimension is 0".into());
        }
        if self.train.is_empty() || !self.train.len().is_multiple_of(self.dim) {
            return Err(format!(
                "train has {} floats, not a positive multiple of the dimension {}",
                self.train.len(),
                self.dim
            ));
        }
        if self.test.is_empty() || !self.test.len().is_multiple_of(self.dim) {
            return Err(format!(
                "test has {} floats, not a positive multiple of the dimension {}",
                self.test.len(),
                self.dim
            ));
        }
        if let Some(i) = self.train.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "train row {} has a NaN or infinite value",
                i / self.dim
            ));
        }
        if let Some(i) = self.test.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "test row {} has a NaN or infinite value",
                i / self.dim
            ));
        }
        let expected = self.n_test() * self.gt_k;
        if self.gt_k == 0 || self.neighbors.len() != expected || self.distances.len() != expected {
            return Err(format!(
                "neighbors/distances must be {} × {} (queries × depth); found {} and {} values",
                self.n_test(),
                self.gt_k,
                self.neighbors.len(),
                self.distances.len()
            ));
        }
        let n = self.n_train() as u32;
        if let Some(i) = self.neighbors.iter().position(|&id| id >= n) {
            return Err(format!(
                "neighbors row {} holds id {}, but train has only {n} points",
                i / self.gt_k,
                self.neighbors[i]
            ));
        }
        if let Some(i) = self.distances.iter().position(|d| !d.is_finite()) {
            return Err(format!(
                "distances row {} has a NaN or infinite value",
                i / self.gt_k
            ));
        }
        Ok(())
    }

    /// The vectors the guest sees: as stored for euclidean, unit-normalised
    /// for angular (so a kernel can use 1 - dot). Returns (train, test).
    pub fn guest_vectors(&self) -> (Vec<f32>, Vec<f32>) {
        match self.metric {
            Metric::Euclidean => (self.train.clone(), self.test.clone()),
            Metric::Angular => (
                normalised(&self.train, self.dim),
                normalised(&self.test, self.dim),
            ),
        }
    }
}

/// Each row scaled to unit length (zero rows stay zero).
pub fn normalised(rows: &[f32], dim: usize) -> Vec<f32> {
    let mut out = rows.to_vec();
    for row in out.chunks_exact_mut(dim) {
        let norm = row
            .iter()
            .map(|x| *x as f64 * *x as f64)
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_distances() {
        assert_eq!(Metric::Euclidean.distance(&[0.0, 0.0], &[3.0, 4.0]), 5.0);
        let d = Metric::Angular.distance(&[1.0, 0.0], &[0.0, 2.0]);
        assert!((d - 1.0).abs() < 1e-12);
        let d = Metric::Angular.distance(&[1.0, 1.0], &[2.0, 2.0]);
        assert!(d.abs() < 1e-12);
    }

    #[test]
    fn validation_names_the_problem() {
        let good = Dataset {
            name: "t".into(),
            metric: Metric::Euclidean,
            dim: 2,
            train: vec![0.0, 0.0, 1.0, 1.0],
            test: vec![0.5, 0.5],
            neighbors: vec![0, 1],
            distances: vec![0.7, 0.7],
            gt_k: 2,
            queries: split::QuerySet::All,
        };
        assert_eq!(good.validate(), Ok(()));
        let mut bad = good.clone();
        bad.train[3] = f32::NAN;
        assert!(bad.validate().unwrap_err().contains("train row 1"));
        let mut bad = good.clone();
        bad.neighbors[1] = 9;
        assert!(bad.validate().unwrap_err().contains("id 9"));
        let mut bad = good;
        bad.test.push(1.0);
        assert!(bad.validate().unwrap_err().contains("test has 3 floats"));
    }
}
