//! The column matrices of convolutions that are not 1×1: im2col (an image's input laid out
//! as the `[cin·k·k × pixels]` matrix a product reads) and col2im (that matrix's gradient
//! added back into the input's planes), with stride-2 layers through their input rows'
//! even and odd columns.

use super::ConvGeom;

/// Fills `cols` (`kdim × len`, row-major) with the im2col block of output pixels
/// `p0..p0+len` of one image.
pub(super) fn im2col(x: &[f32], g: &ConvGeom, p0: usize, len: usize, cols: &mut [f32]) {
    if g.stride == 2 {
        return im2col_stride2(x, g, p0, len, cols);
    }
    let (k, s) = (g.k, g.stride);
    for ci in 0..g.cin {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut cols[((ci * k + ky) * k + kx) * len..][..len];
                let (lo, hi) = tap_columns(g, kx);
                let (mut oy, mut ox0) = (p0 / g.ow, p0 % g.ow);
                let mut j = 0;
                while j < len {
                    let run = (g.ow - ox0).min(len - j);
                    let out = &mut row[j..j + run];
                    let iy = (oy * s + ky) as isize - g.pt as isize;
                    // Output columns ox0 .. ox0 + run; those in lo .. hi read the plane.
                    let (a, b) = (lo.clamp(ox0, ox0 + run), hi.clamp(ox0, ox0 + run));
                    if iy < 0 || iy >= g.h as isize || a >= b {
                        out.fill(0.0);
                    } else {
                        let src = &plane[iy as usize * g.w..][..g.w];
                        out[..a - ox0].fill(0.0);
                        out[b - ox0..].fill(0.0);
                        let x0 = a * s + kx - g.pl;
                        let dst = &mut out[a - ox0..b - ox0];
                        if s == 1 {
                            dst.copy_from_slice(&src[x0..x0 + dst.len()]);
                        } else {
                            for (d, &v) in dst.iter_mut().zip(src[x0..].iter().step_by(s)) {
                                *d = v;
                            }
                        }
                    }
                    j += run;
                    oy += 1;
                    ox0 = 0;
                }
            }
        }
    }
}

/// [`im2col`] of a stride-2 layer: each input row an output row reads is split once into
/// its even and odd columns, and every tap then copies a contiguous run of one of them.
/// (One float at a time per tap, SqueezeNet's and Lite0's first layers, 3 → 64 and 3 → 32
/// on 224², ran at 27 GFLOP/s with their products.) The same values as the general loop.
fn im2col_stride2(x: &[f32], g: &ConvGeom, p0: usize, len: usize, cols: &mut [f32]) {
    let k = g.k;
    let half = g.w.div_ceil(2);
    let mut phases = vec![0.0f32; 2 * half];
    let (even, odd) = phases.split_at_mut(half);
    let taps: Vec<(usize, usize)> = (0..k).map(|kx| tap_columns(g, kx)).collect();
    for ci in 0..g.cin {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..k {
            let (mut oy, mut ox0) = (p0 / g.ow, p0 % g.ow);
            let mut j = 0;
            while j < len {
                let run = (g.ow - ox0).min(len - j);
                let iy = (oy * 2 + ky) as isize - g.pt as isize;
                let inside = iy >= 0 && iy < g.h as isize;
                if inside {
                    let src = &plane[iy as usize * g.w..][..g.w];
                    let pairs = src.chunks_exact(2);
                    if let [last] = pairs.remainder() {
                        even[half - 1] = *last;
                    }
                    for ((e, o), p) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                        (*e, *o) = (p[0], p[1]);
                    }
                }
                for (kx, &(lo, hi)) in taps.iter().enumerate() {
                    let row = &mut cols[((ci * k + ky) * k + kx) * len + j..][..run];
                    let (a, b) = (lo.clamp(ox0, ox0 + run), hi.clamp(ox0, ox0 + run));
                    if !inside || a >= b {
                        row.fill(0.0);
                        continue;
                    }
                    row[..a - ox0].fill(0.0);
                    row[b - ox0..].fill(0.0);
                    // Input column 2·ox + kx − pl: even column (ox + (kx − pl)/2) or odd.
                    let x0 = 2 * a + kx - g.pl;
                    let phase: &[f32] = if x0.is_multiple_of(2) { even } else { odd };
                    row[a - ox0..b - ox0].copy_from_slice(&phase[x0 / 2..x0 / 2 + (b - a)]);
                }
                j += run;
                oy += 1;
                ox0 = 0;
            }
        }
    }
}

/// The output columns `lo .. hi` whose kernel column `kx` falls inside the input
/// (`0 ≤ ox·s + kx − pl < w`).
pub(super) fn tap_columns(g: &ConvGeom, kx: usize) -> (usize, usize) {
    let s = g.stride;
    let lo = g.pl.saturating_sub(kx).div_ceil(s);
    let hi = if g.w + g.pl > kx {
        ((g.w + g.pl - kx - 1) / s + 1).min(g.ow)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Adds the rows of `cols` (`kdim × len`, the gradient of an im2col block of output
/// pixels `p0 .. p0 + len`) that belong to input channel `ci` back onto that channel's plane
/// of the image gradient, output row by output row (no division per value).
pub(super) fn col2im_plane(
    plane: &mut [f32],
    ci: usize,
    g: &ConvGeom,
    p0: usize,
    len: usize,
    cols: &[f32],
) {
    if g.stride == 2 {
        return col2im_plane_stride2(plane, ci, g, p0, len, cols);
    }
    let (k, s) = (g.k, g.stride);
    for ky in 0..k {
        for kx in 0..k {
            let row = &cols[((ci * k + ky) * k + kx) * len..][..len];
            let (lo, hi) = tap_columns(g, kx);
            let (mut oy, mut ox0) = (p0 / g.ow, p0 % g.ow);
            let mut j = 0;
            while j < len {
                let run = (g.ow - ox0).min(len - j);
                let iy = (oy * s + ky) as isize - g.pt as isize;
                let (a, b) = (lo.clamp(ox0, ox0 + run), hi.clamp(ox0, ox0 + run));
                if iy >= 0 && (iy as usize) < g.h && a < b {
                    let dst = &mut plane[iy as usize * g.w..][..g.w];
                    let src = &row[j + a - ox0..j + b - ox0];
                    let x0 = a * s + kx - g.pl;
                    if s == 1 {
                        for (d, &v) in dst[x0..x0 + src.len()].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (d, &v) in dst[x0..].iter_mut().step_by(s).zip(src) {
                            *d += v;
                        }
                    }
                }
                j += run;
                oy += 1;
                ox0 = 0;
            }
        }
    }
}

/// [`col2im_plane`] of a stride-2 layer: for each input row an output row reaches, the
/// taps add contiguous runs into the row's even and odd columns kept apart, which are then
/// interleaved into the row in one pass (the general loop added every tap to every other
/// float of the row). Each input value gets the same terms, its taps summed before they
/// join the row's value.
fn col2im_plane_stride2(
    plane: &mut [f32],
    ci: usize,
    g: &ConvGeom,
    p0: usize,
    len: usize,
    cols: &[f32],
) {
    let k = g.k;
    let half = g.w.div_ceil(2);
    let mut phases = vec![0.0f32; 2 * half];
    let taps: Vec<(usize, usize)> = (0..k).map(|kx| tap_columns(g, kx)).collect();
    for ky in 0..k {
        let (mut oy, mut ox0) = (p0 / g.ow, p0 % g.ow);
        let mut j = 0;
        while j < len {
            let run = (g.ow - ox0).min(len - j);
            let iy = (oy * 2 + ky) as isize - g.pt as isize;
            if iy >= 0 && (iy as usize) < g.h {
                phases.fill(0.0);
                let (even, odd) = phases.split_at_mut(half);
                let mut any = false;
                for (kx, &(lo, hi)) in taps.iter().enumerate() {
                    let (a, b) = (lo.clamp(ox0, ox0 + run), hi.clamp(ox0, ox0 + run));
                    if a >= b {
                        continue;
                    }
                    any = true;
                    let row = &cols[((ci * k + ky) * k + kx) * len..][..len];
                    let src = &row[j + a - ox0..j + b - ox0];
                    // Input column 2·ox + kx − pl: even column (x0 / 2 + i) or odd.
                    let x0 = 2 * a + kx - g.pl;
                    let phase: &mut [f32] = if x0.is_multiple_of(2) { even } else { odd };
                    for (d, &v) in phase[x0 / 2..x0 / 2 + src.len()].iter_mut().zip(src) {
                        *d += v;
                    }
                }
                if any {
                    let dst = &mut plane[iy as usize * g.w..][..g.w];
                    let mut pairs = dst.chunks_exact_mut(2);
                    for ((p, &e), &o) in (&mut pairs).zip(even.iter()).zip(odd.iter()) {
                        p[0] += e;
                        p[1] += o;
                    }
                    if let [last] = pairs.into_remainder() {
                        *last += even[half - 1];
                    }
                }
            }
            j += run;
            oy += 1;
            ox0 = 0;
        }
    }
}
