//! The QPS–recall plot, in the look of ann-benchmarks': recall on x, queries
//! per second on a log-scaled y, one line per kernel showing the QPS the
//! reward credits at each recall (a staircase through the Pareto frontier),
//! every measured point marked, and the reward band shaded.
//! SVG or PNG by the file's extension; text is set in an embedded DejaVu
//! font, so no system font is needed.

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, bail};
use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::evaluation::Evaluation;
use crate::export::table::thousands;
use crate::metrics;
use crate::paths::write_atomic;

const SIZE: (u32, u32) = (960, 640);

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // Registering a bundled TrueType font cannot fail for a valid font.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Writes the plot of `series` (label, evaluation) to `path` (`.svg` or
/// `.png`), atomically.
pub fn write(path: &Path, title: &str, series: &[(&str, &Evaluation)]) -> Result<()> {
    register_font();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bytes = match ext {
        "svg" => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                draw(&root, title, series)?;
                root.present()
                    .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
            }
            svg.into_bytes()
        }
        "png" => {
            let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
                draw(&root, title, series)?;
                root.present()
                    .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
            }
            let mut png = Vec::new();
            image::codecs::png::PngEncoder::new(&mut png)
                .write_image(&rgb, SIZE.0, SIZE.1, image::ExtendedColorType::Rgb8)
                .context("encoding the plot as PNG")?;
            png
        }
        _ => bail!("{}: a plot is written as .svg or .png", path.display()),
    };
    write_atomic(path, &bytes)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[(&str, &Evaluation)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let band = series
        .first()
        .map_or((0.85, 0.95), |(_, e)| (e.band[0], e.band[1]));
    let points: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, e)| e.curve.iter().map(|p| (p.recall, p.qps)))
        .filter(|(_, q)| *q > 0.0)
        .collect();
    let lowest_recall = points.iter().map(|p| p.0).fold(band.0, f64::min);
    let x_lo = ((lowest_recall - 0.02) * 20.0).floor() / 20.0;
    let (q_lo, q_hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (y_lo, y_hi) = if q_hi > 0.0 {
        (q_lo / 1.5, q_hi * 1.5)
    } else {
        (1.0, 10.0)
    };

    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(84)
        .build_cartesian_2d(x_lo.max(0.0)..1.0, (y_lo..y_hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("Recall")
        .y_desc("Queries per second (1/s)")
        .y_label_formatter(&|y| thousands(*y))
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    let shade = RGBColor(200, 200, 235);
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(band.0, y_lo), (band.1, y_hi)],
            shade.mix(0.5).filled(),
        )))
        .map_err(err)?
        .label(format!("reward band [{}, {}]", band.0, band.1))
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], shade.filled()));

    for (i, (label, eval)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        // The line is what the reward credits: the staircase of the best QPS
        // measured at each recall or above, not a line between points.
        let credited = metrics::credited_staircase(&eval.points(), x_lo.max(0.0));
        chart
            .draw_series(LineSeries::new(credited, color.stroke_width(2)))
            .map_err(err)?
            .label(label.to_string())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(3)));
        chart
            .draw_series(
                eval.curve
                    .iter()
                    .filter(|p| p.qps > 0.0)
                    .map(|p| Circle::new((p.recall, p.qps), 3, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}
