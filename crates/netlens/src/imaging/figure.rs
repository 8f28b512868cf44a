//! Figures that can be pasted into a report: grids of images with text captions, an optional
//! title and row labels, rendered to one RGB image.
//!
//! Text is drawn with DejaVu Sans (embedded), so figures look the same on every machine.

use ab_glyph::{FontRef, PxScale};
use image::{imageops, Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([20, 20, 20]);
const PAD: u32 = 8;

fn font() -> FontRef<'static> {
    // The embedded font is valid by construction; fall back to the bold face just in case.
    FontRef::try_from_slice(dejavu::sans::regular())
        .or_else(|_| FontRef::try_from_slice(dejavu::sans::bold()))
        .expect("embedded DejaVu font")
}

/// One image with caption lines under it.
#[derive(Debug, Clone)]
pub struct Cell {
    pub image: RgbImage,
    pub caption: Vec<String>,
}

impl Cell {
    /// A cell with one caption line per `\n`.
    pub fn new(image: RgbImage, caption: &str) -> Self {
        Self {
            image,
            caption: caption.lines().map(str::to_string).collect(),
        }
    }
}

/// A grid of captioned images.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    title: Option<String>,
    rows: Vec<(Option<String>, Vec<Cell>)>,
    cell: u32,
    text_px: f32,
}

impl Figure {
    /// A figure whose images are shown at `cell`×`cell` pixels (aspect kept).
    pub fn new(cell: u32) -> Self {
        Self {
            title: None,
            rows: Vec::new(),
            cell: cell.max(32),
            text_px: (cell as f32 / 14.0).clamp(12.0, 18.0),
        }
    }

    /// Sets a title line drawn above the grid.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Appends a row of cells, with an optional label drawn on its left.
    pub fn row(&mut self, label: Option<String>, cells: Vec<Cell>) -> &mut Self {
        self.rows.push((label, cells));
        self
    }

    /// Number of rows so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the figure.
    pub fn render(&self) -> RgbImage {
        let f = font();
        let scale = PxScale::from(self.text_px);
        let line_h = self.text_px.ceil() as u32 + 4;
        let cols = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0) as u32;
        let max_lines = |cells: &[Cell]| {
            cells
                .iter()
                .map(|c| self.wrap(&f, c).len())
                .max()
                .unwrap_or(0) as u32
        };
        let label_w = self
            .rows
            .iter()
            .filter_map(|r| r.0.as_ref())
            .flat_map(|l| l.lines())
            .map(|l| text_size(scale, &f, l).0 + 2 * PAD)
            .max()
            .unwrap_or(0)
            .min(self.cell);
        let title_h = if self.title.is_some() {
            line_h + PAD
        } else {
            0
        };
        let row_heights: Vec<u32> = self
            .rows
            .iter()
            .map(|(_, cells)| self.cell + PAD + max_lines(cells) * line_h + PAD)
            .collect();
        let title_w = self
            .title
            .as_ref()
            .map(|t| text_size(PxScale::from(self.text_px * 1.15), &f, t).0 + 2 * PAD)
            .unwrap_or(0);
        let width = (label_w + cols * (self.cell + PAD) + PAD).max(title_w);
        let height = title_h + row_heights.iter().sum::<u32>() + PAD;
        let mut out = RgbImage::from_pixel(width.max(1), height.max(1), WHITE);
        if let Some(t) = &self.title {
            draw_text_mut(
                &mut out,
                INK,
                PAD as i32,
                (PAD / 2) as i32,
                PxScale::from(self.text_px * 1.15),
                &f,
                t,
            );
        }
        let mut y = title_h + PAD;
        for ((label, cells), rh) in self.rows.iter().zip(&row_heights) {
            if let Some(l) = label {
                for (i, line) in l.lines().enumerate() {
                    let ty = y + self.cell / 2 + i as u32 * line_h;
                    draw_text_mut(
                        &mut out,
                        INK,
                        PAD as i32,
                        ty as i32 - line_h as i32 / 2,
                        scale,
                        &f,
                        line,
                    );
                }
            }
            for (c, cell) in cells.iter().enumerate() {
                let x = label_w + PAD + c as u32 * (self.cell + PAD);
                let img = fit_into(&cell.image, self.cell);
                let ox = x + (self.cell - img.width()) / 2;
                let oy = y + (self.cell - img.height()) / 2;
                imageops::overlay(&mut out, &img, i64::from(ox), i64::from(oy));
                for (i, line) in self.wrap(&f, cell).iter().enumerate() {
                    let tw = text_size(scale, &f, line).0.min(self.cell);
                    let tx = x + (self.cell - tw) / 2;
                    let ty = y + self.cell + PAD / 2 + i as u32 * line_h;
                    draw_text_mut(&mut out, INK, tx as i32, ty as i32, scale, &f, line);
                }
            }
            y += rh;
        }
        out
    }

    /// Caption lines of a cell, wrapped to the cell width.
    fn wrap(&self, f: &FontRef<'static>, cell: &Cell) -> Vec<String> {
        let scale = PxScale::from(self.text_px);
        let mut out = Vec::new();
        for line in &cell.caption {
            let mut cur = String::new();
            for word in line.split(' ') {
                let trial = if cur.is_empty() {
                    word.to_string()
                } else {
                    format!("{cur} {word}")
                };
                if text_size(scale, f, &trial).0 > self.cell && !cur.is_empty() {
                    out.push(std::mem::replace(&mut cur, word.to_string()));
                } else {
                    cur = trial;
                }
            }
            out.push(cur);
        }
        out
    }
}

/// Scales `img` to fit in a `side`×`side` square, keeping its aspect ratio.
pub fn fit_into(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return RgbImage::new(side, side);
    }
    let s = f64::from(side) / f64::from(w.max(h));
    let (nw, nh) = (
        ((f64::from(w) * s).round() as u32).max(1),
        ((f64::from(h) * s).round() as u32).max(1),
    );
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    let filter = if s > 1.0 {
        imageops::FilterType::Nearest
    } else {
        imageops::FilterType::Triangle
    };
    imageops::resize(img, nw, nh, filter)
}

/// Draws a rectangle outline `thickness` pixels wide (clipped to the image).
pub fn draw_box(
    img: &mut RgbImage,
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
    color: Rgb<u8>,
    thickness: u32,
) {
    for t in 0..thickness as i32 {
        let (w, h) = (
            (x1 - x0 - 2 * t).max(1) as u32,
            (y1 - y0 - 2 * t).max(1) as u32,
        );
        draw_hollow_rect_mut(img, Rect::at(x0 + t, y0 + t).of_size(w, h), color);
    }
}

/// Writes a short label on a filled background at (x, y).
pub fn draw_label(
    img: &mut RgbImage,
    x: i32,
    y: i32,
    text: &str,
    fg: Rgb<u8>,
    bg: Rgb<u8>,
    px: f32,
) {
    let f = font();
    let scale = PxScale::from(px);
    let (tw, th) = text_size(scale, &f, text);
    draw_filled_rect_mut(img, Rect::at(x, y).of_size(tw + 6, th + 6), bg);
    draw_text_mut(img, fg, x + 3, y + 2, scale, &f, text);
}
