//! `--chart FILE.png`: throughput and p99 latency against the number of connections (log
//! scale), one line per server and message size, drawn with plotters' bitmap backend.
//!
//! Text needs a TrueType font, read at run time (DejaVu Sans by default; `--chart-font`).

use std::path::Path;
use std::sync::OnceLock;

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::report::Summary;

/// Where Debian's fonts-dejavu-core puts DejaVu Sans.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Reads the font the chart's text is drawn with; a clear error if it is not there.
pub fn load_font(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "--chart draws its labels with a TrueType font, and {} cannot be read ({e}): \
             install DejaVu Sans (Debian/Ubuntu: apt-get install fonts-dejavu-core) or pass \
             --chart-font FILE.ttf",
            path.display()
        )
    })?;
    // plotters keeps fonts for the life of the process: hold them in a static (one chart font
    // per process), so they stay reachable rather than leaked.
    static FONT: OnceLock<Box<[u8]>> = OnceLock::new();
    let bytes: &'static [u8] = FONT.get_or_init(|| bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{} is not a font the chart can use", path.display()))
}

fn colour(server: &str, i: usize) -> RGBColor {
    match server {
        "uring" => RGBColor(31, 119, 180),
        "epoll" => RGBColor(44, 160, 44),
        "tokio" => RGBColor(214, 39, 40),
        _ => {
            let c = Palette99::pick(i + 3).to_rgba();
            RGBColor(c.0, c.1, c.2)
        }
    }
}

/// One line: a server at one message size.
struct Line {
    name: String,
    colour: RGBColor,
    dashed: bool,
    throughput: Vec<(f64, f64)>,
    p99: Vec<(f64, f64)>,
}

fn lines(summary: &[Summary]) -> Vec<Line> {
    let mut sizes: Vec<usize> = summary.iter().map(|s| s.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut servers: Vec<String> = Vec::new();
    for s in summary {
        if !servers.contains(&s.server) {
            servers.push(s.server.clone());
        }
    }
    let mut out = Vec::new();
    for (si, server) in servers.iter().enumerate() {
        for (zi, &size) in sizes.iter().enumerate() {
            let mut cells: Vec<&Summary> = summary
                .iter()
                .filter(|s| &s.server == server && s.size == size)
                .collect();
            cells.sort_by_key(|s| s.conns);
            let point = |v: Option<f64>, s: &Summary| v.map(|v| (s.conns as f64, v));
            out.push(Line {
                name: format!("{server}, {size} B"),
                colour: colour(server, si),
                dashed: zi % 2 == 1,
                throughput: cells
                    .iter()
                    .filter_map(|s| point(s.msgs_per_s.map(|m| m.median), s))
                    .collect(),
                p99: cells
                    .iter()
                    .filter_map(|s| point(s.p99_us.map(|m| m.median), s))
                    .collect(),
            });
        }
    }
    out
}

/// Draws the chart into `path` (PNG).
pub fn draw(path: &Path, font: &Path, summary: &[Summary], title: &str) -> Result<(), String> {
    load_font(font)?;
    let lines = lines(summary);
    let mut conns: Vec<f64> = summary.iter().map(|s| s.conns as f64).collect();
    conns.sort_by(f64::total_cmp);
    conns.dedup();
    let lo = conns.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let hi = conns.iter().copied().fold(1.0, f64::max).max(lo * 2.0);
    let x = (lo / 1.5)..(hi * 1.5);
    let e = |e: DrawingAreaErrorKind<_>| format!("cannot draw {}: {e}", path.display());

    let root = BitMapBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(e)?;
    let (left, right) = root.split_horizontally(700);

    let top = lines
        .iter()
        .flat_map(|l| l.throughput.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&left)
        .caption("throughput (messages/s)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            x.clone().log_scale().with_key_points(conns.clone()),
            0.0..top * 1.1,
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| super::report::grouped(*v))
        .draw()
        .map_err(e)?;
    for l in &lines {
        draw_line(&mut chart, l, &l.throughput).map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(e)?;

    let (ymin, ymax) = lines
        .iter()
        .flat_map(|l| l.p99.iter().map(|p| p.1))
        .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let ymin = if ymin.is_finite() {
        (ymin / 1.5).max(0.1)
    } else {
        1.0
    };
    let ymax = (ymax * 1.5).max(ymin * 10.0);
    let mut chart = ChartBuilder::on(&right)
        .caption("p99 latency (µs, log)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            x.log_scale().with_key_points(conns.clone()),
            (ymin..ymax)
                .log_scale()
                .with_key_points(log_ticks(ymin, ymax)),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| tick_label(*v))
        .draw()
        .map_err(e)?;
    for l in &lines {
        draw_line(&mut chart, l, &l.p99).map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

fn draw_line<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    l: &Line,
    points: &[(f64, f64)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = ShapeStyle::from(l.colour).stroke_width(2);
    if l.dashed {
        chart.draw_series(DashedLineSeries::new(points.iter().copied(), 8, 5, style))?;
    } else {
        chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
    }
    let dashed = l.dashed;
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 4, l.colour.filled())))?
        .label(l.name.clone())
        // The legend's sample is drawn as the line is: dashed for every other message size
        // (a solid sample is one 24-pixel dash).
        .legend(move |(x, y)| {
            let (dash, gap) = if dashed { (6, 4) } else { (24, 0) };
            DashedPathElement::new(vec![(x, y), (x + 24, y)], dash, gap, style)
        });
    Ok(())
}

/// The labelled values of a log axis over `lo..hi`: 1, 2 and 5 times every power of ten in
/// range, so that any stretch of the axis (say 100–1,000 µs) can be read.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for step in [1.0, 2.0, 5.0] {
            let v = decade * step;
            if (lo..=hi).contains(&v) {
                ticks.push(v);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A tick's label: no decimals from 1 up, grouped by thousands (`2,000`); small values keep
/// their digits (`0.5`).
fn tick_label(v: f64) -> String {
    if v >= 1.0 {
        super::report::grouped(v)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_axis_is_labelled_within_every_decade() {
        let ticks = log_ticks(150.0, 2000.0);
        assert_eq!(ticks, [200.0, 500.0, 1000.0, 2000.0]);
        let labels: Vec<String> = ticks.iter().map(|v| tick_label(*v)).collect();
        assert_eq!(labels, ["200", "500", "1,000", "2,000"]);
        assert_eq!(log_ticks(0.3, 3.0), [0.5, 1.0, 2.0]);
        assert_eq!(tick_label(0.5), "0.5");
        assert!(log_ticks(0.0, 10.0).is_empty());
    }
}
