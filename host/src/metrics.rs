//! The numbers a curve turns into: recall@k as ann-benchmarks computes it, the
//! Pareto frontier of (recall, QPS) points, QPS at a given recall, and the
//! reward (CRINN's area under the frontier over a recall band). Pure
//! functions, checkable by hand.

/// A returned id counts as a hit when its true distance is within the k-th
/// true distance plus this (ann-benchmarks' `knn_threshold` epsilon).
pub const RECALL_EPSILON: f64 = 1e-3;

/// Hits of one query: how many of the first `k` returned distances are within
/// the k-th ground-truth distance + [`RECALL_EPSILON`]. Ties with the k-th
/// neighbour therefore count, as in ann-benchmarks.
pub fn hits_at_k(true_distances: &[f32], returned_distances: &[f64], k: usize) -> usize {
    let threshold = true_distances[k - 1] as f64 + RECALL_EPSILON;
    returned_distances
        .iter()
        .take(k)
        .filter(|&&d| d <= threshold)
        .count()
}

/// One measured point of a curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub recall: f64,
    pub qps: f64,
}

/// The points no other point beats in both recall and QPS, ascending in
/// recall (and so descending in QPS). A point is kept when its QPS is higher
/// than that of every point with at least its recall.
pub fn pareto_frontier(points: &[Point]) -> Vec<Point> {
    let mut sorted: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.recall.is_finite() && p.qps.is_finite())
        .collect();
    sorted.sort_by(|a, b| b.recall.total_cmp(&a.recall).then(b.qps.total_cmp(&a.qps)));
    let mut frontier = Vec::new();
    let mut best_qps = f64::NEG_INFINITY;
    for p in sorted {
        if p.qps > best_qps {
            best_qps = p.qps;
            frontier.push(p);
        }
    }
    frontier.reverse();
    frontier
}

/// The QPS the frontier reaches at recall `target`: linear interpolation
/// between frontier points, the first point's QPS below the lowest recall
/// measured (a kernel that does better also does worse as fast), and `None`
/// above the highest.
pub fn qps_at_recall(frontier: &[Point], target: f64) -> Option<f64> {
    let last = frontier.last()?;
    if target > last.recall {
        return None;
    }
    let first = frontier[0];
    if target <= first.recall {
        return Some(first.qps);
    }
    let i = frontier.partition_point(|p| p.recall < target);
    let (a, b) = (frontier[i - 1], frontier[i]);
    let t = (target - a.recall) / (b.recall - a.recall);
    Some(a.qps + t * (b.qps - a.qps))
}

/// The reward: the mean QPS of the frontier over the recall band `[lo, hi]`,
/// i.e. its area over the band divided by the band's width, counting 0 where
/// the frontier does not reach. Exact for the piecewise-linear frontier.
pub fn band_reward(frontier: &[Point], lo: f64, hi: f64) -> f64 {
    assert!(lo < hi, "the recall band must have positive width");
    let Some(last) = frontier.last() else {
        return 0.0;
    };
    let top = last.recall.min(hi);
    if top <= lo {
        return 0.0;
    }
    // Breakpoints: band edges, frontier points inside, and the top.
    let mut xs: Vec<f64> = vec![lo, top];
    xs.extend(
        frontier
            .iter()
            .map(|p| p.recall)
            .filter(|&r| r > lo && r < top),
    );
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let f = |r: f64| qps_at_recall(frontier, r).unwrap_or(0.0);
    let area: f64 = xs
        .windows(2)
        .map(|w| (f(w[0]) + f(w[1])) / 2.0 * (w[1] - w[0]))
        .sum();
    area / (hi - lo)
}

/// Coefficient of variation (standard deviation / mean) of `xs`, 0 for fewer
/// than two values.
pub fn coefficient_of_variation(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    var.sqrt() / mean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(recall: f64, qps: f64) -> Point {
        Point { recall, qps }
    }

    #[test]
    fn hits_count_ties_with_the_kth_neighbour() {
        // k = 3; the 3rd true distance is 2.0, so 2.0005 counts, 2.01 does not.
        let truth = [1.0, 1.5, 2.0, 2.0, 5.0];
        assert_eq!(hits_at_k(&truth, &[1.0, 2.0, 2.0005], 3), 3);
        assert_eq!(hits_at_k(&truth, &[1.0, 2.01, 1.5], 3), 2);
        // Only the first k returned count.
        assert_eq!(hits_at_k(&truth, &[9.0, 9.0, 9.0, 1.0], 3), 0);
    }

    #[test]
    fn frontier_drops_dominated_points() {
        let pts = [
            p(0.5, 100.0),
            p(0.7, 120.0),
            p(0.9, 50.0),
            p(0.8, 40.0),
            p(0.9, 60.0),
        ];
        assert_eq!(pareto_frontier(&pts), vec![p(0.7, 120.0), p(0.9, 60.0)]);
    }

    #[test]
    fn qps_interpolates_on_the_frontier() {
        let f = [p(0.8, 1000.0), p(0.9, 500.0), p(1.0, 100.0)];
        assert_eq!(qps_at_recall(&f, 0.5), Some(1000.0));
        assert!((qps_at_recall(&f, 0.85).unwrap() - 750.0).abs() < 1e-9);
        assert_eq!(qps_at_recall(&f, 0.9), Some(500.0));
        assert_eq!(qps_at_recall(&f, 1.0), Some(100.0));
        let f = [p(0.8, 1000.0), p(0.9, 500.0)];
        assert_eq!(qps_at_recall(&f, 0.95), None);
        assert_eq!(qps_at_recall(&[], 0.5), None);
    }

    #[test]
    fn reward_is_the_mean_qps_over_the_band() {
        // Linear from (0.8, 1000) to (1.0, 0): over [0.85, 0.95] the mean is
        // the value at 0.9, i.e. 500.
        let f = [p(0.8, 1000.0), p(1.0, 0.0)];
        assert!((band_reward(&f, 0.85, 0.95) - 500.0).abs() < 1e-9);
        // Flat 300 from below the band to recall 0.99: the mean is 300.
        let f = [p(0.99, 300.0)];
        assert!((band_reward(&f, 0.85, 0.95) - 300.0).abs() < 1e-9);
        // Reaching only 0.9 at 400 (flat below): half the band at 400.
        let f = [p(0.9, 400.0)];
        assert!((band_reward(&f, 0.85, 0.95) - 200.0).abs() < 1e-9);
        // A kink inside the band: (0.85, 1000) -> (0.9, 800) -> (0.95, 0).
        let f = [p(0.85, 1000.0), p(0.9, 800.0), p(0.95, 0.0)];
        let want = ((1000.0 + 800.0) / 2.0 * 0.05 + (800.0 + 0.0) / 2.0 * 0.05) / 0.1;
        assert!((band_reward(&f, 0.85, 0.95) - want).abs() < 1e-9);
    }

    #[test]
    fn a_curve_that_never_reaches_the_band_earns_nothing() {
        let f = [p(0.5, 1e6), p(0.84, 1e5)];
        assert_eq!(band_reward(&f, 0.85, 0.95), 0.0);
        assert_eq!(band_reward(&[], 0.85, 0.95), 0.0);
        let f = [p(0.85, 1e5)];
        assert_eq!(
            band_reward(&f, 0.85, 0.95),
            0.0,
            "touching the edge is zero width"
        );
    }

    #[test]
    fn variation_of_samples() {
        assert_eq!(coefficient_of_variation(&[5.0]), 0.0);
        let cv = coefficient_of_variation(&[9.0, 10.0, 11.0]);
        assert!((cv - 0.1).abs() < 1e-12);
    }
}
