//! The measurement protocol for one kernel at one `ef`.
//!
//! Every pass restores a fresh instance from the saved index (untimed), then
//! times one call that answers the whole query batch. The first pass is a
//! warm-up whose time is dropped; the reported QPS is the best of the timed
//! passes (as ann-benchmarks and CRINN report it), with every pass kept so the
//! spread is visible. Every pass's answers are validated, and the recall
//! reported is the lowest any pass achieved, so a kernel gains nothing from
//! answering differently from one pass to the next. A last, untimed pass on
//! the fuel-metering engine counts instructions per query.

use crate::dataset::Dataset;
use crate::guest::KernelComponent;
use crate::metrics::hits_at_k;
use crate::sandbox::{Metering, Sandbox};
use crate::validate::validate_answers;
use crate::verdict::Failure;

/// What is measured: the queries as the guest sees them and how.
pub struct Workload<'a> {
    pub dataset: &'a Dataset,
    /// The queries handed to the guest (unit-normalised for angular).
    pub guest_queries: &'a [f32],
    pub k: usize,
    pub warmup: usize,
    pub runs: usize,
    pub fuel: bool,
}

/// One `ef` of the sweep, measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EfMeasurement {
    pub ef: usize,
    pub recall: f64,
    /// Host-timed seconds of each timed pass (warm-up excluded).
    pub pass_seconds: Vec<f64>,
    pub fuel_per_query: Option<f64>,
}

impl EfMeasurement {
    /// Queries per second of each timed pass.
    pub fn pass_qps(&self, queries: usize) -> Vec<f64> {
        self.pass_seconds
            .iter()
            .map(|s| queries as f64 / s.max(1e-12))
            .collect()
    }

    /// The best pass's QPS.
    pub fn best_qps(&self, queries: usize) -> f64 {
        self.pass_qps(queries).into_iter().fold(0.0, f64::max)
    }
}

/// Runs the passes of one `ef`; `on_pass` is called after each pass.
pub fn measure_ef(
    kernel: &KernelComponent,
    sandbox: &Sandbox,
    index: &[u8],
    work: &Workload<'_>,
    ef: usize,
    on_pass: &mut dyn FnMut(),
) -> Result<EfMeasurement, Failure> {
    let data = work.dataset;
    let (dim, k, n_queries) = (data.dim, work.k, data.n_test());
    let mut pass_seconds = Vec::with_capacity(work.runs);
    let mut recall = f64::INFINITY;
    let mut previous: Option<Vec<u32>> = None;
    let mut score = |ids: Vec<u32>| -> Result<(), Failure> {
        validate_answers(&ids, n_queries, k, data.n_train())?;
        if previous.as_ref() != Some(&ids) {
            recall = recall.min(recall_at_k(data, &ids, k));
            previous = Some(ids);
        }
        Ok(())
    };

    for pass in 0..work.warmup + work.runs {
        let searcher = kernel.restore(sandbox, Metering::Timing, index)?;
        let out = searcher.search_batch(sandbox, work.guest_queries, dim, k, ef)?;
        if pass >= work.warmup {
            pass_seconds.push(out.seconds);
        }
        score(out.ids)?;
        on_pass();
    }

    let mut fuel_per_query = None;
    if work.fuel {
        let searcher = kernel.restore(sandbox, Metering::Fuel, index)?;
        let out = searcher.search_batch(sandbox, work.guest_queries, dim, k, ef)?;
        fuel_per_query = out.fuel.map(|f| f as f64 / n_queries as f64);
        score(out.ids)?;
        on_pass();
    }
    Ok(EfMeasurement {
        ef,
        recall,
        pass_seconds,
        fuel_per_query,
    })
}

/// Mean recall@k of validated answers (`queries × k` ids), ann-benchmarks'
/// way: distances recomputed on the host from the original vectors.
pub fn recall_at_k(data: &Dataset, ids: &[u32], k: usize) -> f64 {
    let mut hits = 0usize;
    let mut returned = Vec::with_capacity(k);
    for (q, answer) in ids.chunks_exact(k).enumerate() {
        let query = data.test_row(q);
        returned.clear();
        returned.extend(
            answer
                .iter()
                .map(|&id| data.metric.distance(query, data.train_row(id as usize))),
        );
        hits += hits_at_k(data.true_distances(q), &returned, k);
    }
    hits as f64 / ids.len() as f64
}

/// Pins the calling thread to the core it is running on, so a measurement is
/// not moved between cores (and caches) mid-pass. Returns the core, or `None`
/// where the OS does not allow it.
pub fn pin_current_thread() -> Option<usize> {
    // SAFETY: sched_getcpu and sched_setaffinity on the calling thread (pid
    // 0) with a zeroed, then filled, cpu_set_t of the right size.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return None;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let ok = libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0;
        ok.then_some(cpu as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Metric;
    use crate::dataset::split::QuerySet;

    #[test]
    fn recall_counts_hits_by_distance_not_by_id() {
        // Two base points at the same distance from the query: either is a hit.
        let data = Dataset {
            name: "t".into(),
            metric: Metric::Euclidean,
            dim: 1,
            train: vec![-1.0, 1.0, 5.0],
            test: vec![0.0],
            neighbors: vec![0, 1, 2],
            distances: vec![1.0, 1.0, 5.0],
            gt_k: 3,
            queries: QuerySet::All,
        };
        assert_eq!(recall_at_k(&data, &[1], 1), 1.0);
        assert_eq!(recall_at_k(&data, &[2], 1), 0.0);
        assert_eq!(recall_at_k(&data, &[2, 0], 2), 0.5);
    }
}
