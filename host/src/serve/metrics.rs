//! The service's counters, exposed at `GET /metrics` in the Prometheus text
//! format: queue depth, busy workers, evaluations by verdict, cache hits,
//! refusals, and a histogram of evaluation durations.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::verdict::Verdict;

/// Upper bounds (seconds) of the duration histogram's buckets.
const BUCKETS: [f64; 9] = [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0];

#[derive(Default)]
pub struct Metrics {
    pub queued: AtomicU64,
    pub busy: AtomicU64,
    pub cache_hits: AtomicU64,
    pub refused_queue_full: AtomicU64,
    pub interrupted: AtomicU64,
    by_verdict: [AtomicU64; 8],
    durations: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Counts a finished evaluation.
    pub fn finished(&self, verdict: Verdict, seconds: f64) {
        let i = Verdict::ALL.iter().position(|v| *v == verdict).unwrap_or(0);
        self.by_verdict[i].fetch_add(1, Ordering::Relaxed);
        let mut h = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        for (bucket, bound) in h.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The mean duration of finished evaluations, once there is one.
    pub fn mean_seconds(&self) -> Option<f64> {
        let h = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        (h.count > 0).then(|| h.sum / h.count as f64)
    }

    /// The Prometheus text exposition.
    pub fn render(&self, workers: usize) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "anneval_queue_depth",
            "Jobs waiting for a worker.",
            self.queued.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "anneval_workers_busy",
            "Workers measuring now.",
            self.busy.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "anneval_workers",
            "Workers (at most one per core).",
            workers as u64,
        );
        counter(
            &mut out,
            "anneval_cache_hits_total",
            "Requests answered from the ledger.",
            self.cache_hits.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "anneval_refused_queue_full_total",
            "Requests refused with 429 because the queue was full.",
            self.refused_queue_full.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "anneval_interrupted_total",
            "Queued jobs recorded as interrupted at shutdown.",
            self.interrupted.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP anneval_evaluations_total Finished evaluations by verdict.\n# TYPE anneval_evaluations_total counter"
        );
        for (verdict, count) in Verdict::ALL.iter().zip(&self.by_verdict) {
            let _ = writeln!(
                out,
                "anneval_evaluations_total{{verdict=\"{verdict}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let h = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP anneval_evaluation_seconds Wall-clock seconds per evaluation.\n# TYPE anneval_evaluation_seconds histogram"
        );
        for (bound, count) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                out,
                "anneval_evaluation_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "anneval_evaluation_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "anneval_evaluation_seconds_sum {}", h.sum);
        let _ = writeln!(out, "anneval_evaluation_seconds_count {}", h.count);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_verdicts_and_buckets() {
        let m = Metrics::default();
        m.finished(Verdict::Ok, 0.5);
        m.finished(Verdict::Ok, 20.0);
        m.finished(Verdict::Timeout, 4000.0);
        let text = m.render(2);
        assert!(
            text.contains("anneval_evaluations_total{verdict=\"ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("anneval_evaluations_total{verdict=\"timeout\"} 1"));
        assert!(text.contains("anneval_evaluation_seconds_bucket{le=\"1\"} 1"));
        assert!(text.contains("anneval_evaluation_seconds_bucket{le=\"30\"} 2"));
        assert!(text.contains("anneval_evaluation_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("anneval_workers 2"));
    }
}
