//! Plots of the attack results, drawn with `plotters` into an RGB image (DejaVu Sans,
//! embedded): the robustness curves and the transfer success matrix as a heatmap.

use super::robustness::{Curves, Level};
use super::transfer::Transfer;
use crate::error::{Error, Result};
use crate::imaging::colormap::Colormap;
use image::RgbImage;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::imaging::plotting::{fonts, plot_err, FONT};

/// A tick value without trailing zeros: 0.5, 1, 10.
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Agreement with the clean top-1 class against the measured RMS change per value (log
/// axis), one curve for Gaussian noise and one for PGD.
pub fn robustness_plot(c: &Curves) -> Result<RgbImage> {
    fonts()?;
    let (w, h) = (900u32, 560u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let pts = |levels: &[Level]| -> Vec<(f64, f64)> {
            levels
                .iter()
                .filter(|l| l.rms > 0.0)
                .map(|l| (l.rms, 100.0 * l.agreement))
                .collect()
        };
        let (noise, pgd) = (pts(&c.noise), pts(&c.pgd));
        let xs = noise.iter().chain(&pgd).map(|p| p.0);
        let lo = xs.clone().fold(f64::INFINITY, f64::min).min(1.0) * 0.8;
        let hi = xs.fold(0.0, f64::max).max(2.0) * 1.25;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: top-1 agreement with the clean prediction ({} images)",
                    c.model, c.images
                ),
                (FONT, 22),
            )
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(64)
            .build_cartesian_2d((lo..hi).log_scale(), -3f64..103f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("RMS change per pixel value of the saved image (0–255 units, log scale)")
            .y_desc("agreement with the clean top-1 (%)")
            .x_label_formatter(&|v| trim(*v))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()
            .map_err(plot_err)?;
        let series = [
            ("Gaussian noise (σ)", &noise, RGBColor(40, 110, 190)),
            ("PGD L∞, untargeted (ε)", &pgd, RGBColor(215, 60, 40)),
        ];
        for (name, data, color) in series {
            chart
                .draw_series(LineSeries::new(data.iter().copied(), color.stroke_width(3)))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart
                .draw_series(data.iter().map(|&p| Circle::new(p, 5, color.filled())))
                .map_err(plot_err)?;
        }
        // Annotate each point with its nominal σ or ε.
        for (levels, color) in [
            (&c.noise, RGBColor(40, 110, 190)),
            (&c.pgd, RGBColor(215, 60, 40)),
        ] {
            chart
                .draw_series(levels.iter().filter(|l| l.rms > 0.0).map(|l| {
                    Text::new(
                        format!("{}", l.value),
                        (l.rms * 1.04, 100.0 * l.agreement + 2.0),
                        (FONT, 14).into_font().color(&color),
                    )
                }))
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::Invalid("plot buffer size".into()))
}

/// The transfer success matrix as a heatmap: rows crafted on, columns tested on, each cell
/// labelled with its success rate and count.
pub fn transfer_heatmap(t: &Transfer, title: &str) -> Result<RgbImage> {
    fonts()?;
    let n = t.models.len();
    let cell = 170u32;
    let (left, top, bottom) = (200u32, 70u32, 50u32);
    let (w, h) = (left + cell * n as u32 + 30, top + cell * n as u32 + bottom);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let ink = (FONT, 17).into_font().color(&BLACK);
        root.draw(&Text::new(
            title.to_string(),
            (12, 12),
            (FONT, 20).into_font(),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            "tested on →".to_string(),
            (left as i32, top as i32 - 28),
            ink.clone(),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            "crafted on ↓".to_string(),
            (12, top as i32 - 28),
            ink.clone(),
        ))
        .map_err(plot_err)?;
        let cmap = Colormap::Viridis;
        let centered = Pos::new(HPos::Center, VPos::Center);
        for i in 0..n {
            let y0 = (top + cell * i as u32) as i32;
            root.draw(&Text::new(
                t.models[i].clone(),
                (12, y0 + cell as i32 / 2 - 8),
                ink.clone(),
            ))
            .map_err(plot_err)?;
            for j in 0..n {
                let x0 = (left + cell * j as u32) as i32;
                let r = t.rate(i, j);
                let c = cmap.color(r as f32).0;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell as i32 - 2, y0 + cell as i32 - 2)],
                    RGBColor(c[0], c[1], c[2]).filled(),
                ))
                .map_err(plot_err)?;
                let fg = if r > 0.6 { BLACK } else { WHITE };
                let (cx, cy) = (x0 + cell as i32 / 2, y0 + cell as i32 / 2);
                root.draw(&Text::new(
                    format!("{:.0}%", 100.0 * r),
                    (cx, cy - 14),
                    (FONT, 30).into_font().color(&fg).pos(centered),
                ))
                .map_err(plot_err)?;
                root.draw(&Text::new(
                    format!("{}/{}", t.success[i][j], t.images),
                    (cx, cy + 22),
                    (FONT, 17).into_font().color(&fg).pos(centered),
                ))
                .map_err(plot_err)?;
            }
        }
        for j in 0..n {
            let x0 = (left + cell * j as u32) as i32;
            root.draw(&Text::new(
                t.models[j].clone(),
                (x0 + cell as i32 / 2, (top + cell * n as u32) as i32 + 18),
                (FONT, 15).into_font().color(&BLACK).pos(centered),
            ))
            .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::Invalid("plot buffer size".into()))
}
