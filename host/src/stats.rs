//! Statistics of a measurement: replicate curves and their rewards, the
//! reward's coefficient of variation, and the interval on the ratio of two
//! kernels' rewards that `anneval gate` decides on. Pure functions.
//!
//! A *replicate* is one full curve: the r-th timed pass of every ef. Two
//! kernels measured together were measured interleaved, so their r-th
//! replicates ran side by side and share the machine's drift. The gate's
//! estimate is the geometric mean of the paired replicate ratios
//! (candidate / baseline), with a Student-t interval on their logarithms: the
//! standard interval for a mean of few paired, roughly log-normal ratios.

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::metrics::{self, Point};

/// The reward of each replicate curve: replicate `r` takes pass `r` of every
/// ef, with that ef's recall (the lowest any of its passes achieved).
/// `qps_passes[e]` holds ef `e`'s passes. Each replicate's reward is
/// [`metrics::band_reward`], so a replicate, like the reward, cannot be
/// raised by points below the band.
pub fn replicate_rewards(recalls: &[f64], qps_passes: &[Vec<f64>], band: (f64, f64)) -> Vec<f64> {
    let replicates = qps_passes.iter().map(Vec::len).min().unwrap_or(0);
    (0..replicates)
        .map(|r| {
            let points: Vec<Point> = recalls
                .iter()
                .zip(qps_passes)
                .map(|(&recall, passes)| Point {
                    recall,
                    qps: passes[r],
                })
                .collect();
            metrics::band_reward(&points, band.0, band.1)
        })
        .collect()
}

/// A ratio and a confidence interval around it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RatioInterval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
    /// How many paired replicates it rests on.
    pub pairs: usize,
}

/// The ratio candidate / baseline from paired replicate rewards: the
/// geometric mean of the pairwise ratios, with a two-sided Student-t interval
/// at `confidence` on their logarithms. Identical ratios (a deterministic
/// metric) give a zero-width interval; a single pair, an unbounded one.
/// Returns `None` when a reward is not positive (the ratio is undefined).
pub fn ratio_interval(
    baseline: &[f64],
    candidate: &[f64],
    confidence: f64,
) -> Option<RatioInterval> {
    let logs: Vec<f64> = baseline
        .iter()
        .zip(candidate)
        .map(|(&b, &c)| (b > 0.0 && c > 0.0).then(|| (c / b).ln()))
        .collect::<Option<_>>()?;
    let n = logs.len();
    if n == 0 {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / n as f64;
    let estimate = mean.exp();
    if n == 1 {
        return Some(RatioInterval {
            estimate,
            low: 0.0,
            high: f64::INFINITY,
            confidence,
            pairs: n,
        });
    }
    let var = logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .expect("positive degrees of freedom")
        .inverse_cdf((1.0 + confidence) / 2.0);
    let half = t * (var / n as f64).sqrt();
    Some(RatioInterval {
        estimate,
        low: (mean - half).exp(),
        high: (mean + half).exp(),
        confidence,
        pairs: n,
    })
}

/// Spearman's rank correlation of `a` and `b` (ties get their average rank):
/// 1 when both order the items alike, -1 when reversed. `None` for fewer
/// than two items or when either side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let mean = (n + 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - mean) * (y - mean);
        va += (x - mean).powi(2);
        vb += (y - mean).powi(2);
    }
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// 1-based ranks, ties averaged.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = rank;
        }
        i = j + 1;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn replicates_take_the_rth_pass_of_every_ef() {
        // Two efs; replicate 0 is flat 100 QPS, replicate 1 flat 200 QPS.
        let rewards = replicate_rewards(
            &[0.5, 0.99],
            &[vec![100.0, 200.0], vec![100.0, 200.0]],
            (0.85, 0.95),
        );
        assert_eq!(rewards, vec![100.0, 200.0]);
        assert!((metrics::coefficient_of_variation(&rewards) - 0.4714).abs() < 1e-3);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Recalls and per-pass QPS of a curve of `efs` efs, `runs` passes each.
        fn curve(efs: usize, runs: usize) -> impl Strategy<Value = (Vec<f64>, Vec<Vec<f64>>)> {
            (
                prop::collection::vec(0.0..=1.0f64, efs),
                prop::collection::vec(prop::collection::vec(100.0..1e6f64, runs), efs),
            )
        }

        proptest! {
            #[test]
            fn a_kernel_with_extra_sub_band_points_gates_exactly_like_itself(
                (recalls, passes) in curve(6, 5),
                extra_recalls in prop::collection::vec(0.0..0.85f64, 1..5),
                extra_qps in prop::collection::vec(prop::collection::vec(0.0..1e12f64, 5), 5),
            ) {
                let band = (0.85, 0.95);
                let plain = replicate_rewards(&recalls, &passes, band);
                let mut shaped_recalls = recalls.clone();
                let mut shaped_passes = passes.clone();
                for (r, q) in extra_recalls.iter().zip(&extra_qps) {
                    shaped_recalls.push(*r);
                    shaped_passes.push(q.clone());
                }
                let shaped = replicate_rewards(&shaped_recalls, &shaped_passes, band);
                prop_assert_eq!(&shaped, &plain);
                let against_itself = ratio_interval(&plain, &plain, 0.95);
                prop_assert_eq!(ratio_interval(&plain, &shaped, 0.95), against_itself);
                prop_assert_eq!(
                    metrics::coefficient_of_variation(&shaped),
                    metrics::coefficient_of_variation(&plain)
                );
            }
        }
    }

    #[test]
    fn spearman_by_hand() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // One swap among four: 1 - 6 * 2 / (4 * 15) = 0.8.
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 4.0, 3.0]).unwrap();
        assert!((rho - 0.8).abs() < 1e-12);
        // Ties get their average rank.
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(spearman(&[1.0], &[1.0]), None);
    }

    #[test]
    fn a_deterministic_metric_has_a_zero_width_interval() {
        let i = ratio_interval(&[10.0, 10.0, 10.0], &[15.0, 15.0, 15.0], 0.95).unwrap();
        assert!((i.estimate - 1.5).abs() < 1e-12);
        assert!((i.low - 1.5).abs() < 1e-12 && (i.high - 1.5).abs() < 1e-12);
        assert_eq!(ratio_interval(&[0.0, 1.0], &[1.0, 1.0], 0.95), None);
        assert_eq!(
            ratio_interval(&[2.0], &[3.0], 0.95).unwrap().high,
            f64::INFINITY
        );
    }

    #[test]
    fn the_interval_covers_a_known_ratio_as_often_as_promised() {
        // Synthetic replicates: log-normal noise on each kernel plus a shared
        // drift per pair, true ratio 1.2.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (noise, drift) = (
            Normal::new(0.0, 0.05).unwrap(),
            Normal::new(0.0, 0.1).unwrap(),
        );
        for (confidence, pairs) in [(0.95, 5), (0.9, 3), (0.8, 10)] {
            let trials = 2000;
            let mut covered = 0;
            for _ in 0..trials {
                let (mut b, mut c) = (Vec::new(), Vec::new());
                for _ in 0..pairs {
                    let shared: f64 = drift.sample(&mut rng);
                    b.push(1000.0 * (shared + noise.sample(&mut rng)).exp());
                    c.push(1200.0 * (shared + noise.sample(&mut rng)).exp());
                }
                let i = ratio_interval(&b, &c, confidence).unwrap();
                covered += usize::from(i.low <= 1.2 && 1.2 <= i.high);
            }
            let rate = covered as f64 / trials as f64;
            // Within about three binomial standard deviations of the promise.
            let slack = 3.0 * (confidence * (1.0 - confidence) / trials as f64).sqrt();
            assert!(
                (rate - confidence).abs() < slack,
                "confidence {confidence}, {pairs} pairs: covered {rate}"
            );
        }
    }
}
