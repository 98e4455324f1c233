//! Development and held-out queries.
//!
//! A fixed fifth of every dataset's queries is held out: scoring during
//! development (`--queries dev`, the default) never runs them, so a final or
//! CI evaluation on them (`--holdout`) measures a kernel on queries it was
//! never tuned against. Which queries are held out depends only on their
//! index, so the split is the same everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Dataset;

/// Which of a dataset's queries are scored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuerySet {
    /// The four fifths used during development.
    #[default]
    Dev,
    /// The fifth held out for final and CI evaluations.
    Holdout,
    /// Every query (to compare with figures published on the whole set).
    All,
}

impl QuerySet {
    pub fn as_str(self) -> &'static str {
        match self {
            QuerySet::Dev => "dev",
            QuerySet::Holdout => "holdout",
            QuerySet::All => "all",
        }
    }

    fn keeps(self, query: usize) -> bool {
        match self {
            QuerySet::All => true,
            QuerySet::Holdout => is_held_out(query),
            QuerySet::Dev => !is_held_out(query),
        }
    }
}

impl fmt::Display for QuerySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuerySet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dev" => Ok(QuerySet::Dev),
            "holdout" => Ok(QuerySet::Holdout),
            "all" => Ok(QuerySet::All),
            other => Err(format!(
                "{other:?} is not a query set (dev, holdout or all)"
            )),
        }
    }
}

/// Whether query `index` belongs to the held-out fifth: a fixed hash of the
/// index (SplitMix64's finaliser), so neighbouring queries are not correlated.
pub fn is_held_out(index: usize) -> bool {
    let mut z = (index as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).is_multiple_of(5)
}

/// `data` with only the queries of `set` (and their ground truth).
pub fn select(mut data: Dataset, set: QuerySet) -> Dataset {
    if set == QuerySet::All {
        return data;
    }
    let (dim, k) = (data.dim, data.gt_k);
    let kept: Vec<usize> = (0..data.n_test()).filter(|&q| set.keeps(q)).collect();
    data.test = kept
        .iter()
        .flat_map(|&q| data.test[q * dim..][..dim].to_vec())
        .collect();
    data.neighbors = kept
        .iter()
        .flat_map(|&q| data.neighbors[q * k..][..k].to_vec())
        .collect();
    data.distances = kept
        .iter()
        .flat_map(|&q| data.distances[q * k..][..k].to_vec())
        .collect();
    data.queries = set;
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::registry;

    #[test]
    fn dev_and_holdout_partition_the_queries_about_four_to_one() {
        let full = registry::make("random-xs-20-euclidean", &|_| {}).unwrap();
        let dev = select(full.clone(), QuerySet::Dev);
        let held = select(full.clone(), QuerySet::Holdout);
        assert_eq!(dev.n_test() + held.n_test(), full.n_test());
        assert!((150..250).contains(&held.n_test()), "{}", held.n_test());
        assert_eq!(dev.validate(), Ok(()));
        assert_eq!(held.validate(), Ok(()));
        // The held-out rows are the full set's rows, truth included.
        let first = (0..full.n_test()).find(|&q| is_held_out(q)).unwrap();
        assert_eq!(held.test_row(0), full.test_row(first));
        assert_eq!(held.true_distances(0), full.true_distances(first));
        assert!(select(full.clone(), QuerySet::All) == full);
    }
}
