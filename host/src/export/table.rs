//! The terminal report of an evaluation: the curve as a table, then the
//! reward, the key figures and the verdict.

use std::fmt::Write;

use crate::evaluation::Evaluation;
use crate::verdict::Verdict;

/// Renders `eval` for a person at a terminal.
/// The evaluation in one line, for `-q`: the verdict and the reward (and
/// the normalised reward when there is one), or the verdict and the first
/// line of its message.
pub fn one_line(eval: &Evaluation) -> String {
    if eval.verdict != crate::verdict::Verdict::Ok {
        let why = eval.message.lines().next().unwrap_or("");
        return format!("{}: {why}", eval.verdict);
    }
    let at = |r: &str| {
        eval.qps_at_recall
            .get(r)
            .copied()
            .flatten()
            .map_or("not reached".into(), thousands)
    };
    format!(
        "ok reward {} (QPS at recall 0.9: {}, 0.95: {}) {}",
        thousands(eval.reward),
        at("0.9"),
        at("0.95"),
        eval.candidate.source
    )
}

pub fn render(eval: &Evaluation) -> String {
    let mut out = String::new();
    let frontier_efs: Vec<usize> = eval.frontier.iter().map(|p| p.ef).collect();
    if !eval.probed.is_empty() && eval.probed.len() != eval.curve.len() {
        let probed: Vec<String> = eval
            .probed
            .iter()
            .map(|p| format!("{} ({:.3})", p.ef, p.recall))
            .collect();
        let _ = writeln!(
            out,
            "probed ef (recall): {}\ntimed: the {} efs that decide the reward\n",
            probed.join(", "),
            eval.curve.len()
        );
    }
    if !eval.curve.is_empty() {
        let _ = writeln!(
            out,
            "{:>6}  {:>8}  {:>12}  {:>7}  {:>9}  {:>14}",
            "ef", "recall", "QPS", "spread", "queries", "fuel/query"
        );
        for p in &eval.curve {
            let mark = if frontier_efs.contains(&p.ef) {
                "*"
            } else {
                " "
            };
            let noisy = if p.noisy { "!" } else { " " };
            let fuel = p.fuel_per_query.map_or("-".into(), thousands);
            let _ = writeln!(
                out,
                "{:>6}  {:>8.4}  {:>12}  {:>6.1}%{noisy} {:>9} {:>14} {mark}",
                p.ef,
                p.recall,
                thousands(p.qps),
                p.spread * 100.0,
                thousands(p.queries_timed as f64),
                fuel
            );
        }
        let _ = writeln!(
            out,
            "(* on the Pareto frontier; ! passes still spread after re-measuring; \
             queries answered per timed pass)\n"
        );
    }
    if eval.verdict == Verdict::Ok {
        let _ = writeln!(
            out,
            "reward: {} (mean over recall [{}, {}] of the best QPS measured at that recall or above, k = {})",
            thousands(eval.reward),
            eval.band[0],
            eval.band[1],
            eval.k
        );
        let at: Vec<String> = eval
            .qps_at_recall
            .iter()
            .map(|(r, q)| format!("{r}: {}", q.map_or("not reached".into(), thousands)))
            .collect();
        let _ = writeln!(out, "QPS at recall  {}", at.join(", "));
        if let Some(f) = eval.fuel_per_query {
            let _ = writeln!(
                out,
                "instructions per query at recall 0.9: {}",
                thousands(f)
            );
        }
        if eval.replicate_rewards.len() > 1 {
            let _ = writeln!(
                out,
                "reward variation over {} replicate curves: {:.1}% (coefficient of variation)",
                eval.replicate_rewards.len(),
                eval.reward_cv * 100.0
            );
        }
        if let Some(r) = eval.fuel_reward {
            let _ = writeln!(
                out,
                "fuel reward: {r:.2} queries per million instructions, mean over the band"
            );
        }
    }
    let mut facts = Vec::new();
    if let Some(s) = eval.build_seconds {
        facts.push(format!("build {s:.2} s"));
    }
    if let Some(s) = eval.restore_seconds {
        facts.push(format!("restore {:.1} ms per pass", s * 1e3));
    }
    if let Some(b) = eval.index_bytes {
        facts.push(format!("index {:.1} MB", b as f64 / 1e6));
    }
    if let Some(s) = eval.candidate.compile_seconds {
        let cached = if eval.candidate.compile_cached == Some(true) {
            " (cached)"
        } else {
            ""
        };
        facts.push(format!("compile {s:.2} s{cached}"));
    }
    facts.push(format!("total {:.1} s", eval.seconds));
    let _ = writeln!(
        out,
        "{}: {} [{}], {}",
        eval.dataset,
        eval.candidate.source,
        eval.engine,
        facts.join(", ")
    );
    if eval.message.is_empty() {
        let _ = writeln!(out, "verdict: {}", eval.verdict);
    } else {
        let _ = writeln!(out, "verdict: {}\n{}", eval.verdict, eval.message);
    }
    out
}

/// 12345.6 -> "12,346".
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if x < -0.5 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// Where the wall time of a run went, for `--breakdown`: one row per phase
/// (each kernel's phases added up), the rest of the run as `other`, and
/// each row's share of the run. `evals` are the evaluations of one run
/// (they share its wall time, [`Evaluation::seconds`]).
pub fn breakdown(evals: &[Evaluation]) -> String {
    use crate::measure::wall::WallTime;
    let run = evals.iter().map(|e| e.seconds).fold(0.0, f64::max);
    let walls: Vec<WallTime> = evals.iter().map(|e| e.wall).collect();
    let total: WallTime = walls.iter().copied().sum();
    let mut rows = total.phases().to_vec();
    rows.push(("other", WallTime::other(run, &walls)));
    let mut out = format!("where the run's {run:.2} s went\n");
    for (name, seconds) in rows {
        let share = if run > 0.0 {
            100.0 * seconds / run
        } else {
            0.0
        };
        let _ = writeln!(out, "  {name:<12} {seconds:>8.3} s {share:>5.1}%");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(-1000.0), "-1,000");
    }
}
