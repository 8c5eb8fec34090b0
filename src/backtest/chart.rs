//! A hand-written SVG of a replay: rolling accuracy over the rows, the rows where drift was
//! detected, the updates (promoted or kept), the challenger in shadow and its promotions,
//! axes and a legend.

use std::fmt::Write as _;
use std::path::Path;

use super::{BacktestError, Comparison, Report};

const W: f64 = 960.0;
const H: f64 = 420.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 72.0;
const BOTTOM: f64 = 52.0;
/// The plot area inside the margins.
const PW: f64 = W - LEFT - RIGHT;
const PH: f64 = H - TOP - BOTTOM;

/// Line colours: the main report first, then the others.
const COLOURS: [&str; 4] = ["#1f77b4", "#7f7f7f", "#ff7f0e", "#9467bd"];
const DRIFT: &str = "#d62728";
const PROMOTED: &str = "#2ca02c";
const KEPT: &str = "#8c8c8c";
/// The estimated accuracy (a dashed line).
const ESTIMATE: &str = "#17becf";
/// The challenger in shadow (a dotted line) and its promotions.
const SHADOW: &str = "#e377c2";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` ticks over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    let raw = (span / target).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_rows(v: f64) -> String {
    if v >= 1e6 && v % 1e5 == 0.0 {
        format!("{}M", v / 1e6)
    } else if v >= 1e4 && v % 1e3 == 0.0 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

/// Where a row (x) and an accuracy (y) land on the canvas.
struct Scale {
    /// Rows on the x axis (at least 1).
    n: f64,
    /// The bottom of the y axis; its top is 1.
    y_min: f64,
}

impl Scale {
    /// The x axis spans `main`'s rows; the y axis runs from a tenth below the lowest point of
    /// any line (at most 0) to 1, so every line fits.
    fn new(main: &Report, lines: &[&Report]) -> Self {
        let lowest = lines
            .iter()
            .flat_map(|r| r.accuracy_series.iter().map(|p| p.accuracy))
            .chain(main.estimation.iter().map(|p| p.estimated_accuracy))
            .fold(1.0f64, f64::min);
        Scale {
            n: main.input_rows.max(1) as f64,
            y_min: ((lowest - 0.05) * 10.0).floor().clamp(0.0, 9.0) / 10.0,
        }
    }

    fn x(&self, row: f64) -> f64 {
        LEFT + PW * row / self.n
    }

    fn y(&self, acc: f64) -> f64 {
        TOP + PH * (1.0 - (acc - self.y_min) / (1.0 - self.y_min))
    }
}

/// The chart of `main` (its line, drifts and updates), with the accuracy lines of `others`
/// (baselines on the same history) drawn under it.
pub fn render_svg(main: &Report, others: &[&Report]) -> String {
    let lines: Vec<&Report> = std::iter::once(main)
        .chain(others.iter().copied())
        .collect();
    let sc = Scale::new(main, &lines);
    let mut s = String::new();
    // In drawing order: what comes later is painted over what came before.
    write_header(&mut s, main);
    write_bootstrap(&mut s, &sc, main);
    write_grid(&mut s, &sc);
    write_axes(&mut s, main);
    write_updates(&mut s, &sc, main);
    write_accuracy_lines(&mut s, &sc, &lines);
    write_estimate(&mut s, &sc, main);
    write_shadow(&mut s, &sc, main);
    write_drifts(&mut s, &sc, main);
    write_legend(&mut s, &lines, main);
    s.push_str("</svg>\n");
    s
}

/// The `<svg>` element, a white background and the title: `main`'s headline numbers.
fn write_header(s: &mut String, main: &Report) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let title = format!(
        "{}: prequential accuracy {:.4} over {} rows; {} drift(s), {} update(s), {} promoted",
        main.model,
        main.prequential_accuracy,
        main.rows,
        main.drifts.len(),
        main.retrains.len(),
        main.promotions
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(&title)
    );
}

/// Greys out the bootstrap rows (no predictions there), labelled when there is room.
fn write_bootstrap(s: &mut String, sc: &Scale, main: &Report) {
    let bx = sc.x(main.bootstrap_rows as f64);
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{PH}" fill="#f0f0f0"/>"##,
        bx - LEFT
    );
    if bx - LEFT >= 70.0 {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#666" text-anchor="middle">bootstrap</text>"##,
            (LEFT + bx) / 2.0,
            TOP + PH - 6.0
        );
    }
}

/// Horizontal grid lines with the y ticks, and the x ticks at a "nice" step of rows.
fn write_grid(s: &mut String, sc: &Scale) {
    let ystep = if 1.0 - sc.y_min > 0.5 { 0.1 } else { 0.05 };
    let mut v = sc.y_min;
    while v <= 1.0 + 1e-9 {
        let yy = sc.y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
            LEFT + PW,
            LEFT - 6.0,
            yy + 4.0
        );
        v += ystep;
    }
    let xstep = nice_step(sc.n, 8.0);
    let mut r = 0.0;
    while r <= sc.n + 1e-9 {
        let xx = sc.x(r);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="black"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + PH,
            TOP + PH + 5.0,
            TOP + PH + 18.0,
            fmt_rows(r)
        );
        r += xstep;
    }
}

/// The axes and their labels; the y label says how many rows each accuracy point covers.
fn write_axes(s: &mut String, main: &Report) {
    let _ = writeln!(
        s,
        r#"<path d="M{LEFT},{TOP} V{:.1} H{:.1}" fill="none" stroke="black"/>"#,
        TOP + PH,
        LEFT + PW
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">row</text>"#,
        LEFT + PW / 2.0,
        H - 12.0
    );
    let every = main
        .accuracy_series
        .first()
        .map_or(0, |p| p.index + 1 - main.bootstrap_rows);
    let _ = writeln!(
        s,
        r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">accuracy (per {every} rows)</text>"#,
        TOP + PH / 2.0
    );
}

/// Updates: dashed verticals, green when promoted, with a tooltip.
fn write_updates(s: &mut String, sc: &Scale, main: &Report) {
    for u in &main.retrains {
        let xx = sc.x(u.index as f64 + 1.0);
        let colour = if u.promoted { PROMOTED } else { KEPT };
        let tip = format!(
            "row {}: {} update ({}), {}{}",
            u.index + 1,
            u.trigger,
            u.strategy.as_str(),
            if u.promoted { "promoted" } else { "kept" },
            u.holdout_accuracy
                .map(|a| format!(", holdout accuracy {a:.4}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            r#"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="{colour}" stroke-dasharray="5,3" stroke-width="1.5"><title>{}</title></line>"#,
            TOP + PH,
            esc(&tip)
        );
    }
}

/// Accuracy lines, baselines first so the main one (`lines[0]`, drawn wider) is on top.
fn write_accuracy_lines(s: &mut String, sc: &Scale, lines: &[&Report]) {
    for (i, rep) in lines.iter().enumerate().rev() {
        let pts: Vec<String> = rep
            .accuracy_series
            .iter()
            .map(|p| format!("{:.1},{:.1}", sc.x(p.index as f64 + 1.0), sc.y(p.accuracy)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let width = if i == 0 { 2.0 } else { 1.5 };
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}"/>"#,
            pts.join(" "),
            COLOURS[i % COLOURS.len()]
        );
    }
}

/// A dashed line through `(row, accuracy)` points (`dash`: SVG's dash pattern); none without
/// points.
fn write_dashed(s: &mut String, sc: &Scale, pts: &[(f64, f64)], stroke: &str, dash: &str) {
    if pts.is_empty() {
        return;
    }
    let pts: Vec<String> = pts
        .iter()
        .map(|&(row, acc)| format!("{:.1},{:.1}", sc.x(row), sc.y(acc)))
        .collect();
    let _ = writeln!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-dasharray="{dash}" stroke-width="1.5"/>"#,
        pts.join(" ")
    );
}

/// The accuracy estimated before the labels, per window: a dashed line over the realized one.
fn write_estimate(s: &mut String, sc: &Scale, main: &Report) {
    let pts: Vec<(f64, f64)> = main
        .estimation
        .iter()
        .map(|p| (p.end_row as f64 + 1.0, p.estimated_accuracy))
        .collect();
    write_dashed(s, sc, &pts, ESTIMATE, "5,3");
}

/// The online challenger's accuracy on the duel's rows (dotted), and its promotions
/// (dotted verticals with a tooltip of the evidence).
fn write_shadow(s: &mut String, sc: &Scale, main: &Report) {
    let pts: Vec<(f64, f64)> = main
        .shadow_series
        .iter()
        .map(|p| (p.index as f64 + 1.0, p.challenger_accuracy))
        .collect();
    write_dashed(s, sc, &pts, SHADOW, "2,2");
    for p in &main.shadow_promotions {
        let xx = sc.x(p.index as f64 + 1.0);
        let tip = format!(
            "row {}: shadow challenger ({}) promoted as version {}: {:.4} vs the champion's \
             {:.4} on the same {} rows, p = {:.2e}",
            p.index + 1,
            p.challenger,
            p.version,
            p.challenger_accuracy,
            p.champion_accuracy,
            p.rows,
            p.p_value
        );
        let _ = writeln!(
            s,
            r#"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="{SHADOW}" stroke-dasharray="2,2" stroke-width="1.5"><title>{}</title></line>"#,
            TOP + PH,
            esc(&tip)
        );
    }
}

/// Drifts: triangles along the top edge, with a tooltip naming the detector.
fn write_drifts(s: &mut String, sc: &Scale, main: &Report) {
    for d in &main.drift_events {
        let xx = sc.x(d.index as f64 + 0.5);
        let _ = writeln!(
            s,
            r#"<path d="M{:.1},{:.1} l5,-9 h-10 z" fill="{DRIFT}"><title>{}</title></path>"#,
            xx,
            TOP - 2.0,
            esc(&format!("row {}: drift ({})", d.index, d.detector))
        );
    }
}

/// The legend, above the plot on the right: one entry per line (policy and its accuracy),
/// then the drift and update markers. Entries are as wide as their text (an estimate: SVG
/// has no text metrics), laid out right-aligned, never left of the plot.
fn write_legend(s: &mut String, lines: &[&Report], main: &Report) {
    let mut entries: Vec<(String, String)> = lines
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                format!(
                    r#"<line x1="0" y1="0" x2="18" y2="0" stroke="{}" stroke-width="2"/>"#,
                    COLOURS[i % COLOURS.len()]
                ),
                format!("{} ({:.4})", r.policy, r.prequential_accuracy),
            )
        })
        .collect();
    if let Some(mae) = main.estimated_accuracy_mae {
        entries.push((
            format!(
                r#"<line x1="0" y1="0" x2="18" y2="0" stroke="{ESTIMATE}" stroke-dasharray="5,3" stroke-width="1.5"/>"#
            ),
            format!("estimated before the labels (MAE {mae:.3})"),
        ));
    }
    if !main.shadow_series.is_empty() {
        entries.push((
            format!(
                r#"<line x1="0" y1="0" x2="18" y2="0" stroke="{SHADOW}" stroke-dasharray="2,2" stroke-width="1.5"/>"#
            ),
            format!(
                "challenger in shadow ({} promoted)",
                main.shadow_promotions.len()
            ),
        ));
    }
    entries.push((
        format!(r#"<path d="M9,4 l5,-9 h-10 z" fill="{DRIFT}"/>"#),
        "drift".into(),
    ));
    entries.push((
        format!(
            r#"<line x1="9" y1="-7" x2="9" y2="7" stroke="{PROMOTED}" stroke-dasharray="3,2" stroke-width="1.5"/>"#
        ),
        "update, promoted".into(),
    ));
    entries.push((
        format!(
            r#"<line x1="9" y1="-7" x2="9" y2="7" stroke="{KEPT}" stroke-dasharray="3,2" stroke-width="1.5"/>"#
        ),
        "update, kept".into(),
    ));
    let widths: Vec<f64> = entries
        .iter()
        .map(|(_, t)| 28.0 + 6.5 * t.chars().count() as f64 + 14.0)
        .collect();
    let mut lx = (W - RIGHT - widths.iter().sum::<f64>()).max(LEFT);
    for ((icon, text), w) in entries.iter().zip(&widths) {
        let _ = writeln!(
            s,
            r#"<g transform="translate({lx:.1},40)">{icon}<text x="24" y="4">{}</text></g>"#,
            esc(text)
        );
        lx += w;
    }
}

fn write(path: &Path, svg: &str) -> Result<(), BacktestError> {
    std::fs::write(path, svg).map_err(|e| BacktestError::Io(format!("{}: {e}", path.display())))
}

/// Writes the chart of one replay.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), BacktestError> {
    write(path, &render_svg(report, &[]))
}

/// Writes the policy's chart with the never-update and periodic baselines' lines under it.
pub fn write_comparison_svg(cmp: &Comparison, path: &Path) -> Result<(), BacktestError> {
    write(path, &render_svg(&cmp.policy, &[&cmp.never, &cmp.periodic]))
}
