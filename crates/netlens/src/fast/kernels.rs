//! The CPU kernels of the fast path, on row-major float32 NCHW buffers.
//!
//! Matrix products go through the `gemm` crate (SIMD, runtime CPU detection); the kernels
//! written here are the ones no crate provides: tiled im2col convolution with a fused
//! bias + activation + mask epilogue, direct depthwise convolution forward and backward-data
//! (stride 2 split into phases instead of zero-filling), max-pooling with saved argmax, and
//! activation masks. Work is split into independent tasks over rayon's global pool (the
//! threads burn uses), and scratch memory is thread-local and reused, so a loop of passes
//! does not allocate in its steady state.

use gemm::Parallelism;
use rayon::prelude::*;
use std::cell::RefCell;

/// An activation fused into a layer's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None,
    /// `max(x, 0)`; gradient where `x > 0`.
    Relu,
    /// `relu(x) − relu(x − 6)` (= hardtanh(0, 6)); gradient where `0 < x ≤ 6`, as the plain
    /// burn path computes it.
    Relu6,
}

impl Act {
    #[inline(always)]
    fn apply(self, z: f32) -> (f32, u8) {
        match self {
            Act::None => (z, 1),
            Act::Relu => {
                if z > 0.0 {
                    (z, 1)
                } else {
                    (0.0, 0)
                }
            }
            Act::Relu6 => {
                if z > 0.0 {
                    if z <= 6.0 {
                        (z, 1)
                    } else {
                        (6.0, 0)
                    }
                } else {
                    (0.0, 0)
                }
            }
        }
    }
}

/// A raw pointer that tasks writing disjoint regions may share.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    #[inline(always)]
    fn at(self, offset: usize) -> *mut T {
        // SAFETY: callers only form offsets inside the buffer the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static SCRATCH2: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a thread-local scratch buffer of at least `n` floats (contents arbitrary).
fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < n {
            s.resize(n, 0.0);
        }
        f(&mut s[..n])
    })
}

fn with_scratch2<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH2.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < n {
            s.resize(n, 0.0);
        }
        f(&mut s[..n])
    })
}

/// `dst (+)= lhs · rhs` for `m×k` times `k×n`, every matrix given by a pointer and its
/// (row stride, column stride) in elements.
///
/// # Safety
/// The pointers and strides must describe matrices inside live buffers, and `dst` must not
/// overlap the inputs or be written concurrently by another task.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_s: (isize, isize),
    accumulate: bool,
    lhs: *const f32,
    lhs_s: (isize, isize),
    rhs: *const f32,
    rhs_s: (isize, isize),
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    *dst.offset(i as isize * dst_s.0 + j as isize * dst_s.1) = 0.0;
                }
            }
        }
        return;
    }
    gemm::gemm(
        m, n, k, dst, dst_s.1, dst_s.0, accumulate, lhs, lhs_s.1, lhs_s.0, rhs, rhs_s.1, rhs_s.0,
        1.0, 1.0, false, false, false, par,
    )
}

/// Parallelism for a single large product when there are too few tasks to share out.
pub(crate) fn inner_parallelism(tasks: usize) -> Parallelism {
    let t = rayon::current_num_threads();
    if tasks >= t || t <= 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(t)
    }
}

/// Geometry of one convolution on one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    /// Padding top and left (bottom/right follow from the output size).
    pub pt: usize,
    pub pl: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    fn pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pt == 0 && self.pl == 0
    }
    fn kdim(&self) -> usize {
        self.cin * self.k * self.k
    }
}

/// Column-tile size so that `images × tiles` gives every thread work and a tile's im2col
/// block stays cache-sized.
fn column_tile(pixels: usize, images: usize, kdim: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let want_tasks = 2 * threads;
    let per_image = want_tasks.div_ceil(images.max(1)).max(1);
    let by_tasks = pixels.div_ceil(per_image);
    let by_cache = (96 * 1024 / kdim.max(1)).max(32);
    by_tasks.min(by_cache).clamp(16.min(pixels.max(1)), 1024)
}

/// Fills `cols` (`kdim × len`, row-major) with the im2col block of output pixels
/// `p0..p0+len` of one image.
fn im2col(x: &[f32], g: &ConvGeom, p0: usize, len: usize, cols: &mut [f32]) {
    let (k, s) = (g.k, g.stride);
    for ci in 0..g.cin {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut cols[((ci * k + ky) * k + kx) * len..][..len];
                let mut p = p0;
                let mut j = 0;
                while j < len {
                    let oy = p / g.ow;
                    let ox0 = p % g.ow;
                    let run = (g.ow - ox0).min(len - j);
                    let iy = (oy * s + ky) as isize - g.pt as isize;
                    let out = &mut row[j..j + run];
                    if iy < 0 || iy >= g.h as isize {
                        out.fill(0.0);
                    } else {
                        let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                        for (t, o) in out.iter_mut().enumerate() {
                            let ix = ((ox0 + t) * s + kx) as isize - g.pl as isize;
                            *o = if ix >= 0 && (ix as usize) < g.w {
                                src[ix as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                    j += run;
                    p += run;
                }
            }
        }
    }
}

/// Adds `cols` (`kdim × len`, the gradient of an im2col block) back onto the image gradient.
fn col2im(dx: &mut [f32], g: &ConvGeom, p0: usize, len: usize, cols: &[f32]) {
    let (k, s) = (g.k, g.stride);
    for ci in 0..g.cin {
        let plane = &mut dx[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &cols[((ci * k + ky) * k + kx) * len..][..len];
                for (j, &v) in row.iter().enumerate() {
                    let p = p0 + j;
                    let (oy, ox) = (p / g.ow, p % g.ow);
                    let iy = (oy * s + ky) as isize - g.pt as isize;
                    let ix = (ox * s + kx) as isize - g.pl as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                        plane[iy as usize * g.w + ix as usize] += v;
                    }
                }
            }
        }
    }
}

/// Dense convolution (`groups = 1`) of a batch: `y (+)= W ⋆ x`, then, in the same pass over
/// each cache-hot output tile, `+ bias`, the activation, and its gradient mask.
///
/// `weight` is `[cout, cin·k·k]`. With `accumulate` the product is added to `y`.
#[allow(clippy::too_many_arguments)]
pub fn conv_forward(
    x: &[f32],
    y: &mut [f32],
    images: usize,
    g: &ConvGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    accumulate: bool,
    act: Act,
    mask: Option<&mut [u8]>,
) {
    let (in_sz, out_sz) = (g.cin * g.h * g.w, g.cout * g.oh * g.ow);
    debug_assert!(x.len() >= images * in_sz && y.len() >= images * out_sz);
    let pixels = g.oh * g.ow;
    let kdim = g.kdim();
    let tile = column_tile(pixels, images, kdim);
    let tiles = pixels.div_ceil(tile);
    let tasks = images * tiles;
    let par = inner_parallelism(tasks);
    let yp = SendPtr(y.as_mut_ptr());
    let mp = mask.map(|m| SendPtr(m.as_mut_ptr()));
    let pointwise = g.pointwise();
    (0..tasks).into_par_iter().for_each(|t| {
        let (n, ti) = (t / tiles, t % tiles);
        let p0 = ti * tile;
        let len = tile.min(pixels - p0);
        let xi = &x[n * in_sz..(n + 1) * in_sz];
        let ybase = n * out_sz + p0;
        let run = |rhs: *const f32, rhs_rs: isize| {
            // SAFETY: tile (n, ti) writes only columns p0..p0+len of image n.
            unsafe {
                matmul(
                    g.cout,
                    len,
                    kdim,
                    yp.at(ybase),
                    (pixels as isize, 1),
                    accumulate,
                    weight.as_ptr(),
                    (kdim as isize, 1),
                    rhs,
                    (rhs_rs, 1),
                    par,
                );
            }
        };
        if pointwise {
            run(xi[p0..].as_ptr(), pixels as isize);
        } else {
            with_scratch(kdim * len, |cols| {
                im2col(xi, g, p0, len, cols);
                run(cols.as_ptr(), len as isize);
            });
        }
        if bias.is_some() || act != Act::None || mp.is_some() {
            for co in 0..g.cout {
                let off = ybase + co * pixels;
                // SAFETY: same disjoint tile as above.
                let row = unsafe { std::slice::from_raw_parts_mut(yp.at(off), len) };
                let b = bias.map_or(0.0, |b| b[co]);
                match mp {
                    Some(mp) => {
                        let mrow = unsafe { std::slice::from_raw_parts_mut(mp.at(off), len) };
                        epilogue_masked(row, mrow, b, act);
                    }
                    None => epilogue(row, b, act),
                }
            }
        }
    });
}

#[inline(always)]
fn epilogue(row: &mut [f32], b: f32, act: Act) {
    for v in row {
        *v = act.apply(*v + b).0;
    }
}

#[inline(always)]
fn epilogue_masked(row: &mut [f32], mask: &mut [u8], b: f32, act: Act) {
    for (v, m) in row.iter_mut().zip(mask) {
        let (y, mm) = act.apply(*v + b);
        *v = y;
        *m = mm;
    }
}

/// Backward-data of a strided dense convolution: `dx (+)= col2im(Wᵀ · dy)`, image by image.
pub fn conv_backward_col2im(
    dy: &[f32],
    dx: &mut [f32],
    images: usize,
    g: &ConvGeom,
    weight: &[f32],
    accumulate: bool,
) {
    let (in_sz, out_sz) = (g.cin * g.h * g.w, g.cout * g.oh * g.ow);
    let pixels = g.oh * g.ow;
    let kdim = g.kdim();
    let par = inner_parallelism(images);
    dx[..images * in_sz]
        .par_chunks_mut(in_sz)
        .enumerate()
        .for_each(|(n, dxi)| {
            if !accumulate {
                dxi.fill(0.0);
            }
            let dyi = &dy[n * out_sz..(n + 1) * out_sz];
            with_scratch2(kdim * pixels, |cols| {
                // SAFETY: cols is this task's scratch; weight is [cout, kdim], read as Wᵀ.
                unsafe {
                    matmul(
                        kdim,
                        pixels,
                        g.cout,
                        cols.as_mut_ptr(),
                        (pixels as isize, 1),
                        false,
                        weight.as_ptr(),
                        (1, kdim as isize),
                        dyi.as_ptr(),
                        (pixels as isize, 1),
                        par,
                    );
                }
                col2im(dxi, g, 0, pixels, cols);
            });
        });
}

/// Backward-data of a 1×1 convolution or of a dense layer over pixels:
/// `dx[ci, p] (+)= Σ_co W[co, ci] · dy[co, p]`, tiled like the forward pass.
pub fn pointwise_backward(
    dy: &[f32],
    dx: &mut [f32],
    images: usize,
    cin: usize,
    cout: usize,
    pixels: usize,
    weight: &[f32],
    accumulate: bool,
) {
    let tile = column_tile(pixels, images, cout);
    let tiles = pixels.div_ceil(tile);
    let tasks = images * tiles;
    let par = inner_parallelism(tasks);
    let dxp = SendPtr(dx.as_mut_ptr());
    (0..tasks).into_par_iter().for_each(|t| {
        let (n, ti) = (t / tiles, t % tiles);
        let p0 = ti * tile;
        let len = tile.min(pixels - p0);
        // SAFETY: tile (n, ti) writes only its own columns of image n.
        unsafe {
            matmul(
                cin,
                len,
                cout,
                dxp.at(n * cin * pixels + p0),
                (pixels as isize, 1),
                accumulate,
                weight.as_ptr(),
                (1, cin as isize),
                dy[n * cout * pixels + p0..].as_ptr(),
                (pixels as isize, 1),
                par,
            );
        }
    });
}

/// Multiplies a gradient by a saved activation mask, in place, on all threads.
pub fn apply_mask(g: &mut [f32], mask: &[u8]) {
    const CHUNK: usize = 1 << 14;
    g.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks(CHUNK))
        .for_each(|(g, m)| {
            for (v, &m) in g.iter_mut().zip(m) {
                if m == 0 {
                    *v = 0.0;
                }
            }
        });
}

/// `dst (+)= src` on all threads.
pub fn add_into(dst: &mut [f32], src: &[f32], accumulate: bool) {
    const CHUNK: usize = 1 << 14;
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| {
            if accumulate {
                for (d, s) in d.iter_mut().zip(s) {
                    *d += s;
                }
            } else {
                d.copy_from_slice(s);
            }
        });
}

/// `out = a + b` on all threads.
pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    const CHUNK: usize = 1 << 14;
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| {
            for ((o, a), b) in o.iter_mut().zip(a).zip(b) {
                *o = a + b;
            }
        });
}

// ---------------------------------------------------------------------------------------------
// Depthwise convolution
// ---------------------------------------------------------------------------------------------

/// Geometry of a depthwise convolution on one plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DwGeom {
    pub k: usize,
    pub stride: usize,
    pub pt: usize,
    pub pl: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
}

/// `acc[i] += Σ_j w[j] · src[j][i]`, vectorized over `i` (the compiler unrolls `j`).
#[inline(always)]
fn taps<const K: usize>(acc: &mut [f32], src: &[&[f32]; K], w: &[f32; K]) {
    let n = acc.len();
    let src: [&[f32]; K] = std::array::from_fn(|j| &src[j][..n]);
    for i in 0..n {
        let mut a = acc[i];
        for j in 0..K {
            a += w[j] * src[j][i];
        }
        acc[i] = a;
    }
}

/// One output row of a depthwise convolution over a zero-padded (and, for stride 2,
/// column-deinterleaved) plane: `acc[ox] += Σ_{ky,kx} w[ky,kx] · P[row0+ky][ox·s+kx]`.
#[inline(always)]
fn dw_row<const K: usize>(
    acc: &mut [f32],
    padded: &[f32],
    pw: usize,
    row0: usize,
    stride: usize,
    w: &[f32],
) {
    let half = pw.div_ceil(2);
    for ky in 0..K {
        let prow = &padded[(row0 + ky) * pw..(row0 + ky + 1) * pw];
        let src: [&[f32]; K] = std::array::from_fn(|kx| {
            if stride == 1 {
                &prow[kx..]
            } else if kx % 2 == 0 {
                &prow[kx / 2..]
            } else {
                &prow[half + kx / 2..]
            }
        });
        let wk: [f32; K] = std::array::from_fn(|kx| w[ky * K + kx]);
        taps::<K>(acc, &src, &wk);
    }
}

#[inline(always)]
fn dw_row_dyn(
    acc: &mut [f32],
    padded: &[f32],
    pw: usize,
    row0: usize,
    k: usize,
    s: usize,
    w: &[f32],
) {
    let half = pw.div_ceil(2);
    let n = acc.len();
    for ky in 0..k {
        let prow = &padded[(row0 + ky) * pw..(row0 + ky + 1) * pw];
        for kx in 0..k {
            let src = if s == 1 {
                &prow[kx..kx + n]
            } else if kx % 2 == 0 {
                &prow[kx / 2..kx / 2 + n]
            } else {
                &prow[half + kx / 2..half + kx / 2 + n]
            };
            let wv = w[ky * k + kx];
            for (a, v) in acc.iter_mut().zip(src) {
                *a += wv * v;
            }
        }
    }
}

/// Copies `src` (`h×w`, optionally multiplied by a 0/1 mask) into a zero-padded plane with
/// `top`/`left` zeros and `ph×pw` in all; with `split`, each padded row is stored as its
/// even columns followed by its odd columns.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pad_plane(
    src: &[f32],
    mask: Option<&[u8]>,
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    ph: usize,
    pw: usize,
    split: bool,
    out: &mut [f32],
) {
    out[..ph * pw].fill(0.0);
    let half = pw.div_ceil(2);
    for y in 0..h {
        let r = y + top;
        if r >= ph {
            break;
        }
        let row = &mut out[r * pw..(r + 1) * pw];
        let s = &src[y * w..(y + 1) * w];
        let m = mask.map(|m| &m[y * w..(y + 1) * w]);
        for x in 0..w {
            let c = x + left;
            if c >= pw {
                break;
            }
            let v = match m {
                Some(m) if m[x] == 0 => 0.0,
                _ => s[x],
            };
            let at = if split {
                if c % 2 == 0 {
                    c / 2
                } else {
                    half + c / 2
                }
            } else {
                c
            };
            row[at] = v;
        }
    }
}

#[inline(always)]
fn dw_plane_forward(
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    g: &DwGeom,
    w: &[f32],
    b: f32,
    act: Act,
) {
    let (k, s) = (g.k, g.stride);
    let ph = (g.oh - 1) * s + k;
    let pw = (g.ow - 1) * s + k;
    with_scratch(ph * pw, |padded| {
        pad_plane(x, None, g.h, g.w, g.pt, g.pl, ph, pw, s == 2, padded);
        let mut mask = mask;
        for oy in 0..g.oh {
            let acc = &mut y[oy * g.ow..(oy + 1) * g.ow];
            acc.fill(b);
            match k {
                3 if s <= 2 => dw_row::<3>(acc, padded, pw, oy * s, s, w),
                5 if s <= 2 => dw_row::<5>(acc, padded, pw, oy * s, s, w),
                _ => dw_row_dyn(acc, padded, pw, oy * s, k, s, w),
            }
            match mask.as_deref_mut() {
                Some(m) => epilogue_masked(acc, &mut m[oy * g.ow..(oy + 1) * g.ow], 0.0, act),
                None => epilogue(acc, 0.0, act),
            }
        }
    });
}

/// Stride-1 backward-data of one plane: the gradient (masked) correlated with the flipped
/// kernel, `dx (+)= Σ w[k-1-ky, k-1-kx] · G[iy+ky][ix+kx]` over the padded gradient `G`.
#[inline(always)]
fn dw_plane_backward_s1(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    g: &DwGeom,
    wf: &[f32],
    accumulate: bool,
) {
    let k = g.k;
    let top = k - 1 - g.pt;
    let left = k - 1 - g.pl;
    let ph = g.h + k - 1;
    let pw = g.w + k - 1;
    with_scratch(ph * pw, |padded| {
        pad_plane(dy, mask, g.oh, g.ow, top, left, ph, pw, false, padded);
        for iy in 0..g.h {
            let acc = &mut dx[iy * g.w..(iy + 1) * g.w];
            if !accumulate {
                acc.fill(0.0);
            }
            match k {
                3 => dw_row::<3>(acc, padded, pw, iy, 1, wf),
                5 => dw_row::<5>(acc, padded, pw, iy, 1, wf),
                _ => dw_row_dyn(acc, padded, pw, iy, k, 1, wf),
            }
        }
    });
}

/// Strided backward-data of one plane, phase by phase: the input pixels of one row/column
/// parity receive exactly the kernel taps of the matching parity, so each phase is a small
/// dense correlation of the (masked) gradient — no zero-filled upsampling.
#[inline(always)]
fn dw_plane_backward_strided(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    g: &DwGeom,
    w: &[f32],
    accumulate: bool,
) {
    let (k, s) = (g.k, g.stride);
    // G[r][c] = dy[r - k][c - k] (zero outside).
    let ph = g.oh + 2 * k;
    let pw = g.ow + 2 * k;
    let maxlen = g.w.div_ceil(s);
    with_scratch(ph * pw, |padded| {
        pad_plane(dy, mask, g.oh, g.ow, k, k, ph, pw, false, padded);
        with_scratch2(maxlen, |acc_buf| {
            for iy in 0..g.h {
                let dxrow = &mut dx[iy * g.w..(iy + 1) * g.w];
                if !accumulate {
                    dxrow.fill(0.0);
                }
                for px in 0..s.min(g.w) {
                    // ix = s·a + px for a in 0..len
                    let len = (g.w - px).div_ceil(s);
                    let acc = &mut acc_buf[..len];
                    acc.fill(0.0);
                    for ky in 0..k {
                        let ny = iy as isize + g.pt as isize - ky as isize;
                        if ny.rem_euclid(s as isize) != 0 {
                            continue;
                        }
                        let r = (ny.div_euclid(s as isize) + k as isize) as usize;
                        let prow = &padded[r * pw..(r + 1) * pw];
                        for kx in 0..k {
                            let nx = px as isize + g.pl as isize - kx as isize;
                            if nx.rem_euclid(s as isize) != 0 {
                                continue;
                            }
                            let c0 = (nx.div_euclid(s as isize) + k as isize) as usize;
                            let src = &prow[c0..c0 + len];
                            let wv = w[ky * k + kx];
                            for (a, v) in acc.iter_mut().zip(src) {
                                *a += wv * v;
                            }
                        }
                    }
                    for (a, &v) in acc.iter().enumerate() {
                        dxrow[a * s + px] += v;
                    }
                }
            }
        });
    });
}

/// Depthwise convolution of a batch (`images × channels` planes), bias, activation and
/// mask fused into each output row. `weight` is `[channels, k·k]`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_forward(
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    images: usize,
    channels: usize,
    g: &DwGeom,
    weight: &[f32],
    bias: &[f32],
    act: Act,
) {
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    let kk = g.k * g.k;
    let planes = images * channels;
    let run = |i: usize, yo: &mut [f32], m: Option<&mut [u8]>| {
        let c = i % channels;
        simd(|| {
            dw_plane_forward(
                &x[i * ip..(i + 1) * ip],
                yo,
                m,
                g,
                &weight[c * kk..(c + 1) * kk],
                bias[c],
                act,
            )
        });
    };
    match mask {
        Some(mask) => y[..planes * op]
            .par_chunks_mut(op)
            .zip(mask[..planes * op].par_chunks_mut(op))
            .enumerate()
            .for_each(|(i, (yo, m))| run(i, yo, Some(m))),
        None => y[..planes * op]
            .par_chunks_mut(op)
            .enumerate()
            .for_each(|(i, yo)| run(i, yo, None)),
    }
}

/// Backward-data of a depthwise convolution; the gradient `dy` is multiplied by the
/// layer's activation `mask` as it is read. `weight_flipped` is each channel's kernel
/// rotated by 180° (used at stride 1).
#[allow(clippy::too_many_arguments)]
pub fn depthwise_backward(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    images: usize,
    channels: usize,
    g: &DwGeom,
    weight: &[f32],
    weight_flipped: &[f32],
    accumulate: bool,
) {
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    let kk = g.k * g.k;
    let planes = images * channels;
    dx[..planes * ip]
        .par_chunks_mut(ip)
        .enumerate()
        .for_each(|(i, dxi)| {
            let c = i % channels;
            let dyi = &dy[i * op..(i + 1) * op];
            let mi = mask.map(|m| &m[i * op..(i + 1) * op]);
            simd(|| {
                if g.stride == 1 {
                    dw_plane_backward_s1(
                        dyi,
                        mi,
                        dxi,
                        g,
                        &weight_flipped[c * kk..(c + 1) * kk],
                        accumulate,
                    )
                } else {
                    dw_plane_backward_strided(
                        dyi,
                        mi,
                        dxi,
                        g,
                        &weight[c * kk..(c + 1) * kk],
                        accumulate,
                    )
                }
            })
        });
}

/// Runs `f` compiled for AVX2 + FMA when the CPU has them (the kernels above are
/// `#[inline(always)]` generic code that the compiler then vectorizes 8 wide).
#[inline(always)]
fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just detected.
            return unsafe { avx2(f) };
        }
    }
    f()
}

// ---------------------------------------------------------------------------------------------
// Pooling
// ---------------------------------------------------------------------------------------------

/// Geometry of a max-pool on one plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeom {
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
}

/// Max-pool of `planes` planes; `argmax` (if given) receives the in-plane index of each
/// window's first maximum, as PyTorch picks it.
pub fn max_pool_forward(
    x: &[f32],
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
    planes: usize,
    g: &PoolGeom,
) {
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    let plane = |i: usize, yo: &mut [f32], mut am: Option<&mut [u32]>| {
        let xi = &x[i * ip..(i + 1) * ip];
        for oy in 0..g.oh {
            let y0 = (oy * g.stride) as isize - g.pad as isize;
            let (ya, yb) = (y0.max(0) as usize, ((y0 + g.k as isize) as usize).min(g.h));
            for ox in 0..g.ow {
                let x0 = (ox * g.stride) as isize - g.pad as isize;
                let (xa, xb) = (x0.max(0) as usize, ((x0 + g.k as isize) as usize).min(g.w));
                let mut best = f32::NEG_INFINITY;
                let mut at = ya * g.w + xa;
                for iy in ya..yb {
                    for ix in xa..xb {
                        let v = xi[iy * g.w + ix];
                        if v > best || v.is_nan() {
                            best = v;
                            at = iy * g.w + ix;
                        }
                    }
                }
                yo[oy * g.ow + ox] = best;
                if let Some(am) = am.as_deref_mut() {
                    am[oy * g.ow + ox] = at as u32;
                }
            }
        }
    };
    match argmax {
        Some(am) => y[..planes * op]
            .par_chunks_mut(op)
            .zip(am[..planes * op].par_chunks_mut(op))
            .enumerate()
            .for_each(|(i, (yo, a))| plane(i, yo, Some(a))),
        None => y[..planes * op]
            .par_chunks_mut(op)
            .enumerate()
            .for_each(|(i, yo)| plane(i, yo, None)),
    }
}

/// Routes each window's gradient to its saved argmax.
pub fn max_pool_backward(
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
    planes: usize,
    g: &PoolGeom,
    accumulate: bool,
) {
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    dx[..planes * ip]
        .par_chunks_mut(ip)
        .enumerate()
        .for_each(|(i, dxi)| {
            if !accumulate {
                dxi.fill(0.0);
            }
            for (&a, &v) in argmax[i * op..(i + 1) * op]
                .iter()
                .zip(&dy[i * op..(i + 1) * op])
            {
                dxi[a as usize] += v;
            }
        });
}
