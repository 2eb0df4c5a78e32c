//! The dashboard's charts, drawn on the server as SVG with `plotters`: the pages
//! need no chart library and no build step, and every chart is the same picture
//! for every browser. Integer coordinates throughout (seconds, counts, µs).

use plotters::prelude::*;

use crate::hub::Volume;

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 260;

/// Colours with at least 4.5:1 contrast on white.
const INK: RGBColor = RGBColor(33, 37, 41);
const BLUE: RGBColor = RGBColor(13, 71, 161);
const ORANGE: RGBColor = RGBColor(173, 58, 0);

#[derive(Debug, thiserror::Error)]
#[error("the chart could not be drawn: {0}")]
pub struct ChartError(String);

fn err<E: std::fmt::Display>(error: E) -> ChartError {
    ChartError(error.to_string())
}

fn nice_max(value: u64) -> u64 {
    let value = value.max(1);
    let mut step = 1u64;
    while step.saturating_mul(10) <= value {
        step = step.saturating_mul(10);
    }
    value.div_ceil(step).saturating_mul(step).max(1)
}

/// Committed transfers per second over the last minutes (bank-wide, from the
/// branches' event streams). `series` = (unix second, count), oldest first.
pub fn throughput(series: &[(u64, u64)]) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let span = u64::try_from(series.len()).unwrap_or(0).max(2);
        let top = nice_max(series.iter().map(|(_, c)| *c).max().unwrap_or(0));
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Committed transfers per second",
                ("sans-serif", 16).into_font().color(&INK),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(0u64..span, 0u64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds (oldest left, now right)")
            .label_style(("sans-serif", 12).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 12).into_font().color(&INK))
            .light_line_style(RGBColor(230, 230, 230))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                series
                    .iter()
                    .enumerate()
                    .map(|(i, (_, count))| (u64::try_from(i).unwrap_or(0), *count)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// p50 and p99 of money movements through the gateway, per 2-second bucket.
/// `series` = (bucket start, count, p50 µs, p99 µs).
pub fn latency(series: &[(u64, u64, u64, u64)]) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let span = u64::try_from(series.len()).unwrap_or(0).max(2);
        let top = nice_max(series.iter().map(|s| s.3).max().unwrap_or(0));
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Payment latency through the gateway (µs)",
                ("sans-serif", 16).into_font().color(&INK),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d(0u64..span, 0u64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("2-second buckets (now right)")
            .label_style(("sans-serif", 12).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 12).into_font().color(&INK))
            .light_line_style(RGBColor(230, 230, 230))
            .draw()
            .map_err(err)?;
        let points = |pick: fn(&(u64, u64, u64, u64)) -> u64| {
            series
                .iter()
                .enumerate()
                .map(move |(i, s)| (u64::try_from(i).unwrap_or(0), pick(s)))
        };
        chart
            .draw_series(LineSeries::new(points(|s| s.2), BLUE.stroke_width(2)))
            .map_err(err)?
            .label("p50")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(points(|s| s.3), ORANGE.stroke_width(2)))
            .map_err(err)?
            .label("p99")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], ORANGE.stroke_width(2)));
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 12).into_font().color(&INK))
            .background_style(WHITE)
            .border_style(INK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Transfers per branch and currency since the gateway started, as bars.
pub fn volumes(volumes: &[Volume]) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let bars = u64::try_from(volumes.len()).unwrap_or(0).max(1);
        let top = nice_max(volumes.iter().map(|v| v.transfers).max().unwrap_or(0));
        let labels: Vec<String> = volumes
            .iter()
            .map(|v| format!("{:04} {}", v.branch, v.currency))
            .collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Transfers by branch and currency",
                ("sans-serif", 16).into_font().color(&INK),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d((0u64..bars).into_segmented(), 0u64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len().max(1))
            .x_label_formatter(&|value| match value {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
                    .ok()
                    .and_then(|i| labels.get(i).cloned())
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .label_style(("sans-serif", 12).into_font().color(&INK))
            .light_line_style(RGBColor(230, 230, 230))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(volumes.iter().enumerate().map(|(i, v)| {
                let i = u64::try_from(i).unwrap_or(0);
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0),
                        (SegmentValue::Exact(i + 1), v.transfers),
                    ],
                    BLUE.filled(),
                );
                bar.set_margin(0, 0, 6, 6);
                bar
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_even_without_data() {
        assert!(throughput(&[]).unwrap().starts_with("<svg"));
        assert!(latency(&[]).unwrap().contains("p99"));
        let v = volumes(&[Volume {
            branch: 1,
            currency: "EUR".into(),
            transfers: 7,
            amount: "1.00".into(),
        }])
        .unwrap();
        assert!(v.contains("0001 EUR"));
        let t = throughput(&[(1, 5), (2, 9), (3, 0)]).unwrap();
        assert!(t.contains("<polyline"), "{t}");
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(87), 90);
        assert_eq!(nice_max(1234), 2000);
    }
}
