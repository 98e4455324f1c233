//! The gate's Markdown summary, for a pull request's checks page
//! (`$GITHUB_STEP_SUMMARY`) or a file: the verdict line, both curves' key
//! figures side by side, the ratio with its interval, and the plot.

use std::fmt::Write;

use crate::evaluation::{Evaluation, REPORTED_RECALLS, recall_key};
use crate::export::table::thousands;
use crate::gate::GateReport;

/// Renders `report`; `plot` is the plot's path relative to the Markdown file.
pub fn gate(report: &GateReport, plot: Option<&str>) -> String {
    let (b, c) = (&report.baseline, &report.candidate);
    let mut out = String::new();
    let mark = if report.passed { "✅" } else { "❌" };
    let _ = writeln!(out, "## anneval gate {mark}\n\n**{}**\n", report.summary);
    let _ = writeln!(out, "| | baseline | candidate |\n|---|---|---|");
    let row = |out: &mut String, name: &str, f: &dyn Fn(&Evaluation) -> String| {
        let _ = writeln!(out, "| {name} | {} | {} |", f(b), f(c));
    };
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("—".to_string(), f);
    row(&mut out, "kernel", &|e| format!("`{}`", e.candidate.source));
    row(&mut out, "verdict", &|e| format!("`{}`", e.verdict));
    row(
        &mut out,
        &format!(
            "reward (mean credited QPS, recall {}–{})",
            b.band[0], b.band[1]
        ),
        &|e| thousands(e.reward),
    );
    for r in REPORTED_RECALLS {
        let key = recall_key(r);
        row(&mut out, &format!("QPS at recall {key}"), &|e| {
            opt(e.qps_at_recall.get(&key).copied().flatten(), &thousands)
        });
    }
    row(&mut out, "best recall", &|e| {
        opt(e.max_recall, &|v| format!("{v:.4}"))
    });
    row(&mut out, "instructions per query at recall 0.9", &|e| {
        opt(e.fuel_per_query, &thousands)
    });
    row(&mut out, "fuel reward (queries per M instructions)", &|e| {
        opt(e.fuel_reward, &|v| format!("{v:.2}"))
    });
    row(&mut out, "reward variation (CV over replicates)", &|e| {
        format!("{:.1}%", e.reward_cv * 100.0)
    });
    row(&mut out, "build seconds", &|e| {
        opt(e.build_seconds, &|v| format!("{v:.2}"))
    });
    row(
        &mut out,
        "restore seconds per pass (median, untimed)",
        &|e| opt(e.restore_seconds, &|v| format!("{v:.4}")),
    );
    row(&mut out, "index size", &|e| {
        opt(e.index_bytes.map(|v| v as f64), &|v| {
            format!("{:.1} MB", v / 1e6)
        })
    });
    if let Some(r) = report.ratio {
        let _ = writeln!(
            out,
            "\nRatio candidate / baseline ({} metric): **{:.3}**, {:.0}% interval **{:.3} – {:.3}** over {} paired replicate{}; \
             required lower end: {:.2}; recall tolerance {}.",
            report.metric,
            r.estimate,
            r.confidence * 100.0,
            r.low,
            r.high,
            r.pairs,
            if r.pairs == 1 { "" } else { "s" },
            report.min_speedup,
            report.recall_tolerance
        );
    }
    let info = b.dataset_info.as_ref();
    let _ = writeln!(
        out,
        "\nDataset `{}` ({} base points, {} {} queries, {} dimensions, {}), k = {}, {} timed passes per ef, interleaved.",
        b.dataset,
        info.map_or(0, |i| i.n_base),
        info.map_or(0, |i| i.n_queries),
        info.map_or("", |i| i.queries.as_str()),
        info.map_or(0, |i| i.dim),
        info.map_or("".into(), |i| i.metric.to_string()),
        b.k,
        b.runs
    );
    if let Some(plot) = plot {
        let _ = writeln!(out, "\n![QPS against recall]({plot})");
    }
    out
}
