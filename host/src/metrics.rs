//! The numbers a curve turns into: recall@k as ann-benchmarks computes it, the
//! Pareto frontier of (recall, QPS) points, the QPS credited at a recall, and
//! the reward (the mean credited QPS over a recall band). Pure functions,
//! checkable by hand.
//!
//! One rule makes every figure derived from a curve safe against curve
//! shaping: **the QPS credited at recall r is the best QPS measured at a
//! recall of at least r**, and nothing more. The credited curve is therefore
//! a staircase under the measured points, never a line drawn between them:
//! a point below the band cannot lend its speed to any recall in the band,
//! whatever its QPS, and no recall is credited with a speed that was not
//! measured at that recall or better. CRINN's reward (the area under the
//! QPS–recall curve over the band, with linear interpolation between
//! points) does not have this property: a useless point at recall 0 and
//! QPS 10⁷ drags the interpolated line, and so the reward, up across the
//! whole band.

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
/// than that of every point with at least its recall. Points whose recall or
/// QPS is not a finite number are dropped.
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

/// The QPS credited at recall `target`: the best QPS measured at a recall of
/// at least `target`, or `None` when no point reaches it. `points` may be
/// any measured points or their frontier (the answer is the same).
pub fn qps_at_recall(points: &[Point], target: f64) -> Option<f64> {
    points
        .iter()
        .filter(|p| p.recall.is_finite() && p.qps.is_finite() && p.recall >= target)
        .map(|p| p.qps)
        .reduce(f64::max)
}

/// The reward: the mean over the recall band `[lo, hi]` of the QPS credited
/// at each recall ([`qps_at_recall`]), counting 0 where no point reaches.
/// The credited curve is a staircase: frontier point `i` is credited over
/// the recalls between the previous frontier point's recall and its own,
/// so the reward is exactly Σ qpsᵢ × (its share of the band) / width.
pub fn band_reward(points: &[Point], lo: f64, hi: f64) -> f64 {
    assert!(lo < hi, "the recall band must have positive width");
    let mut area = 0.0;
    let mut below = lo;
    for p in pareto_frontier(points) {
        let top = p.recall.min(hi);
        if top > below {
            area += p.qps * (top - below);
            below = top;
        }
    }
    area / (hi - lo)
}

/// The credited staircase as a polyline for a plot, from recall `from` to
/// the frontier's last point: each frontier point's QPS held level back to
/// the previous point's recall, then a drop to the next point's QPS.
pub fn credited_staircase(points: &[Point], from: f64) -> Vec<(f64, f64)> {
    let mut line = Vec::new();
    let mut left = from;
    for p in pareto_frontier(points) {
        if p.recall < left {
            continue;
        }
        line.push((left, p.qps));
        line.push((p.recall, p.qps));
        left = p.recall;
    }
    line
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
    fn qps_credited_is_the_best_measured_at_that_recall_or_above() {
        let f = [p(0.8, 1000.0), p(0.9, 500.0), p(1.0, 100.0)];
        assert_eq!(qps_at_recall(&f, 0.5), Some(1000.0));
        assert_eq!(qps_at_recall(&f, 0.8), Some(1000.0));
        // Between two points the higher-recall point's QPS, never a blend.
        assert_eq!(qps_at_recall(&f, 0.85), Some(500.0));
        assert_eq!(qps_at_recall(&f, 0.9), Some(500.0));
        assert_eq!(qps_at_recall(&f, 1.0), Some(100.0));
        let f = [p(0.8, 1000.0), p(0.9, 500.0)];
        assert_eq!(qps_at_recall(&f, 0.95), None);
        assert_eq!(qps_at_recall(&[], 0.5), None);
        // Raw points give the same answer as their frontier.
        let raw = [p(0.9, 100.0), p(0.95, 300.0), p(0.5, 9e9)];
        assert_eq!(qps_at_recall(&raw, 0.9), Some(300.0));
    }

    #[test]
    fn reward_is_the_mean_credited_qps_over_the_band() {
        // (0.8, 1000) then (1.0, 0): the band is credited 0, the QPS measured
        // at recall 1.0; 1000 was measured only below the band.
        let f = [p(0.8, 1000.0), p(1.0, 0.0)];
        assert_eq!(band_reward(&f, 0.85, 0.95), 0.0);
        // Flat 300 from below the band to recall 0.99: the mean is 300.
        let f = [p(0.99, 300.0)];
        assert!((band_reward(&f, 0.85, 0.95) - 300.0).abs() < 1e-9);
        // Reaching only 0.9 at 400: half the band at 400.
        let f = [p(0.9, 400.0)];
        assert!((band_reward(&f, 0.85, 0.95) - 200.0).abs() < 1e-9);
        // Steps inside the band: 1000 up to 0.87, 800 up to 0.92, 300 to 0.97.
        let f = [
            p(0.7, 5000.0),
            p(0.87, 1000.0),
            p(0.92, 800.0),
            p(0.97, 300.0),
        ];
        let want = (1000.0 * 0.02 + 800.0 * 0.05 + 300.0 * 0.03) / 0.1;
        assert!((band_reward(&f, 0.85, 0.95) - want).abs() < 1e-9);
    }

    #[test]
    fn the_issue_11_curve_earns_only_what_its_honest_points_measured() {
        // Useless answers at small ef (recall ~0, QPS ~1e7), then the honest
        // curve: the reward is that of the honest points alone.
        let honest = [p(0.88, 120_000.0), p(0.93, 90_000.0), p(0.97, 60_000.0)];
        let mut shaped = honest.to_vec();
        shaped.extend([p(0.001, 1e7), p(0.002, 9e6), p(0.84, 5e6)]);
        assert_eq!(
            band_reward(&shaped, 0.85, 0.95),
            band_reward(&honest, 0.85, 0.95)
        );
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
    fn the_staircase_holds_each_frontier_qps_back_to_the_previous_recall() {
        let pts = [p(0.5, 900.0), p(0.9, 500.0), p(0.99, 100.0), p(0.8, 10.0)];
        assert_eq!(
            credited_staircase(&pts, 0.0),
            vec![
                (0.0, 900.0),
                (0.5, 900.0),
                (0.5, 500.0),
                (0.9, 500.0),
                (0.9, 100.0),
                (0.99, 100.0)
            ]
        );
        assert_eq!(
            credited_staircase(&pts, 0.95),
            vec![(0.95, 100.0), (0.99, 100.0)]
        );
    }

    #[test]
    fn variation_of_samples() {
        assert_eq!(coefficient_of_variation(&[5.0]), 0.0);
        let cv = coefficient_of_variation(&[9.0, 10.0, 11.0]);
        assert!((cv - 0.1).abs() < 1e-12);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const LO: f64 = 0.85;
        const HI: f64 = 0.95;

        fn point() -> impl Strategy<Value = Point> {
            (0.0..=1.0f64, 1.0..1e7f64).prop_map(|(recall, qps)| Point { recall, qps })
        }

        fn below_band() -> impl Strategy<Value = Point> {
            (0.0..LO, 0.0..1e12f64).prop_map(|(recall, qps)| Point { recall, qps })
        }

        fn best_at_or_above(points: &[Point], r: f64) -> f64 {
            points
                .iter()
                .filter(|p| p.recall >= r)
                .map(|p| p.qps)
                .fold(0.0, f64::max)
        }

        proptest! {
            #[test]
            fn points_below_the_band_never_change_the_reward(
                curve in prop::collection::vec(point(), 0..12),
                extra in prop::collection::vec(below_band(), 1..6),
            ) {
                let before = band_reward(&curve, LO, HI);
                let mut shaped = curve.clone();
                shaped.extend(extra);
                prop_assert_eq!(band_reward(&shaped, LO, HI), before);
            }

            #[test]
            fn changing_a_sub_band_points_qps_never_changes_the_reward(
                curve in prop::collection::vec(point(), 1..12),
                qps in 0.0..1e12f64,
            ) {
                let before = band_reward(&curve, LO, HI);
                let shaped: Vec<Point> = curve
                    .iter()
                    .map(|&p| if p.recall < LO { Point { qps, ..p } } else { p })
                    .collect();
                prop_assert_eq!(band_reward(&shaped, LO, HI), before);
            }

            #[test]
            fn the_reward_never_exceeds_the_best_qps_measured_in_or_above_the_band(
                curve in prop::collection::vec(point(), 0..12),
            ) {
                let reward = band_reward(&curve, LO, HI);
                prop_assert!(reward <= best_at_or_above(&curve, LO) * (1.0 + 1e-12));
                prop_assert!(reward >= 0.0);
            }

            #[test]
            fn credited_qps_is_bounded_by_what_was_measured_and_never_rises_with_recall(
                curve in prop::collection::vec(point(), 1..12),
                r1 in 0.0..=1.0f64,
                r2 in 0.0..=1.0f64,
            ) {
                let (a, b) = (r1.min(r2), r1.max(r2));
                let qa = qps_at_recall(&curve, a);
                let qb = qps_at_recall(&curve, b);
                prop_assert_eq!(qa.unwrap_or(0.0), best_at_or_above(&curve, a));
                prop_assert!(qa.unwrap_or(0.0) >= qb.unwrap_or(0.0));
                // The frontier credits exactly what the raw points do.
                prop_assert_eq!(qps_at_recall(&pareto_frontier(&curve), a), qa);
            }

            #[test]
            fn the_reward_is_the_band_mean_of_the_credited_qps(
                curve in prop::collection::vec(point(), 0..10),
            ) {
                // A Riemann sum at midpoints of 2,000 slices agrees with the
                // closed form to within one slice's worth of the largest step.
                let n = 2000;
                let width = (HI - LO) / n as f64;
                let sum: f64 = (0..n)
                    .map(|i| qps_at_recall(&curve, LO + (i as f64 + 0.5) * width).unwrap_or(0.0))
                    .sum();
                let numeric = sum / n as f64;
                let top = best_at_or_above(&curve, LO);
                let exact = band_reward(&curve, LO, HI);
                prop_assert!((numeric - exact).abs() <= top * 2.0 / n as f64 + 1e-9,
                    "numeric {} exact {}", numeric, exact);
            }

            #[test]
            fn raising_a_points_qps_never_lowers_the_reward(
                curve in prop::collection::vec(point(), 1..12),
                which in 0usize..12,
                factor in 1.0..10.0f64,
            ) {
                let i = which % curve.len();
                let mut faster = curve.clone();
                faster[i].qps *= factor;
                prop_assert!(band_reward(&faster, LO, HI) >= band_reward(&curve, LO, HI));
            }
        }
    }
}
