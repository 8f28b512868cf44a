//! Bilinear resizing: 8-bit images bit-exact with Pillow's `Image.resize(size, BILINEAR)`, and
//! float planes (saliency maps) exactly as PyTorch's `F.interpolate(mode="bilinear")`.
//!
//! torchvision's `Resize` on a PIL image calls Pillow, whose antialiased bilinear filter works
//! in two separable passes (horizontal, then vertical) with 22-bit fixed-point coefficients.
//! Reproducing it exactly means a photo fed to netlens gives the same 8-bit pixels, hence the
//! same logits, as the PyTorch reference pipeline. [`resize_bilinear`] is a port of Pillow's
//! `Resample.c` (`precompute_coeffs`, `normalize_coeffs_8bpc`,
//! `ImagingResample{Horizontal,Vertical}_8bpc`). [`upsample_bilinear`] brings a map computed on
//! a coarse grid (Grad-CAM's layer, a transformer's patches) up to the input size, as
//! pytorch-grad-cam and Captum do with `align_corners=False` and no antialiasing.

use image::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point filter coefficients for one axis: per output index, the first input index,
/// the number of taps, and `ksize` coefficients.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    kk: Vec<i32>,
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn precompute(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // bilinear support is 1.0
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut kk = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = bilinear((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, &kx) in k.iter().enumerate().take(xmax) {
            let v = if ww != 0.0 { kx / ww } else { kx };
            let f = v * f64::from(1u32 << PRECISION_BITS);
            kk[xx * ksize + x] = if v < 0.0 {
                (f - 0.5) as i32
            } else {
                (f + 0.5) as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs { ksize, bounds, kk }
}

#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes `img` to `w`×`h` exactly as Pillow's bilinear `resize` does.
pub fn resize_bilinear(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let (w, h) = (w as usize, h as usize);
    if (iw, ih) == (w, h) {
        return img.clone();
    }
    let src = img.as_raw();
    let half = 1i32 << (PRECISION_BITS - 1);
    let cv = precompute(ih, h);
    let need_h = w != iw;
    let need_v = h != ih;
    // Horizontal pass over only the rows the vertical pass will read.
    let (tmp, tmp_w, row0) = if need_h {
        let ch = precompute(iw, w);
        let first = cv.bounds[0].0;
        let last = cv.bounds[h - 1].0 + cv.bounds[h - 1].1;
        let rows = if need_v { first..last } else { 0..ih };
        let mut out = vec![0u8; rows.len() * w * 3];
        for (ty, y) in rows.clone().enumerate() {
            let line = &src[y * iw * 3..(y + 1) * iw * 3];
            for xx in 0..w {
                let (xmin, n) = ch.bounds[xx];
                let k = &ch.kk[xx * ch.ksize..xx * ch.ksize + n];
                let mut s = [half; 3];
                for (x, &kx) in k.iter().enumerate() {
                    let p = &line[(xmin + x) * 3..(xmin + x) * 3 + 3];
                    s[0] += i32::from(p[0]) * kx;
                    s[1] += i32::from(p[1]) * kx;
                    s[2] += i32::from(p[2]) * kx;
                }
                let o = (ty * w + xx) * 3;
                out[o] = clip8(s[0]);
                out[o + 1] = clip8(s[1]);
                out[o + 2] = clip8(s[2]);
            }
        }
        (out, w, if need_v { first } else { 0 })
    } else {
        (src.to_vec(), iw, 0)
    };
    if !need_v {
        return RgbImage::from_raw(w as u32, h as u32, tmp).unwrap_or_default();
    }
    let mut out = vec![0u8; w * h * 3];
    for yy in 0..h {
        let (ymin, n) = cv.bounds[yy];
        let k = &cv.kk[yy * cv.ksize..yy * cv.ksize + n];
        for xx in 0..tmp_w {
            let mut s = [half; 3];
            for (y, &ky) in k.iter().enumerate() {
                let o = ((ymin - row0 + y) * tmp_w + xx) * 3;
                s[0] += i32::from(tmp[o]) * ky;
                s[1] += i32::from(tmp[o + 1]) * ky;
                s[2] += i32::from(tmp[o + 2]) * ky;
            }
            let o = (yy * w + xx) * 3;
            out[o] = clip8(s[0]);
            out[o + 1] = clip8(s[1]);
            out[o + 2] = clip8(s[2]);
        }
    }
    RgbImage::from_raw(w as u32, h as u32, out).unwrap_or_default()
}

/// Bilinear resize of one `h`×`w` float plane to `oh`×`ow`, as PyTorch's
/// `F.interpolate(mode="bilinear", align_corners=False)` (no antialiasing).
pub fn upsample_bilinear(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    // Source coordinate of output index o: (o + 0.5)·in/out − 0.5, clamped at 0.
    let axis = |o: usize, inn: usize, out: usize| {
        let s = ((o as f64 + 0.5) * inn as f64 / out as f64 - 0.5).max(0.0);
        let i0 = (s.floor() as usize).min(inn - 1);
        let i1 = (i0 + 1).min(inn - 1);
        (i0, i1, s - i0 as f64)
    };
    let cols: Vec<_> = (0..ow).map(|x| axis(x, w, ow)).collect();
    let mut out = Vec::with_capacity(oh * ow);
    for y in 0..oh {
        let (y0, y1, ly) = axis(y, h, oh);
        for &(x0, x1, lx) in &cols {
            let v = |yy: usize, xx: usize| f64::from(src[yy * w + xx]);
            let top = (1.0 - lx) * v(y0, x0) + lx * v(y0, x1);
            let bot = (1.0 - lx) * v(y1, x0) + lx * v(y1, x1);
            out.push(((1.0 - ly) * top + ly * bot) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsample_matches_pytorch() {
        // torch.nn.functional.interpolate(torch.tensor([[[[0.,1.],[2.,3.]]]]), size=(4,4),
        //   mode="bilinear", align_corners=False)
        let got = upsample_bilinear(&[0.0, 1.0, 2.0, 3.0], 2, 2, 4, 4);
        let want = [
            0.0, 0.25, 0.75, 1.0, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2.0, 2.25, 2.75, 3.0,
        ];
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{got:?}");
        }
    }
}
