//! Deletion and insertion curves as a figure, drawn with `plotters` (DejaVu Sans, embedded):
//! one panel per curve (deletion, insertion, ROAD's two orders), one line per method (the mean curve over the images), the area
//! under each in the legend.

use crate::error::{Error, Result};
use image::RgbImage;
use plotters::prelude::*;

use crate::imaging::plotting::{fonts, plot_err, FONT};

/// One line of a panel: a label, x values (0–1) and y values (probabilities).
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// Matplotlib's ten, then black and maroon, so that every method and both baselines of
/// `evaluate`'s default list (11 series) get a colour of their own.
const COLORS: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(128, 0, 0),
];

/// Panels (`title`, series) under one `caption`: side by side, two per row when there are
/// more than two.
pub fn curves_plot(caption: &str, panels: &[(String, Vec<Series>)]) -> Result<RgbImage> {
    fonts()?;
    let (pw, ph) = (620u32, 500u32);
    let n = panels.len().max(1);
    let cols = if n > 2 { 2 } else { n };
    let rows = n.div_ceil(cols);
    let w = pw * cols as u32;
    let h = ph * rows as u32 + 20;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(caption, (FONT, 20)).map_err(plot_err)?;
        let areas = root.split_evenly((rows, cols));
        for ((title, series), area) in panels.iter().zip(&areas) {
            let ymax = series
                .iter()
                .flat_map(|s| s.y.iter().copied())
                .fold(0.0f64, f64::max)
                .max(0.05)
                * 1.05;
            let mut chart = ChartBuilder::on(area)
                .caption(title, (FONT, 18))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(0f64..1f64, 0f64..ymax)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc("fraction of pixels changed")
                .y_desc("probability of the class")
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 15))
                .draw()
                .map_err(plot_err)?;
            for (i, s) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(
                        s.x.iter().copied().zip(s.y.iter().copied()),
                        color.stroke_width(2),
                    ))
                    .map_err(plot_err)?
                    .label(s.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::Invalid("plot buffer size".into()))
}
