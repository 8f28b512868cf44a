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
    /// The activation of `z` and its 0/1 gradient, branch-free so that loops vectorize.
    #[inline(always)]
    pub(crate) fn apply(self, z: f32) -> (f32, u8) {
        match self {
            Act::None => (z, 1),
            Act::Relu => {
                let pos = z > 0.0;
                (if pos { z } else { 0.0 }, u8::from(pos))
            }
            Act::Relu6 => {
                let pos = z > 0.0;
                let low = z <= 6.0;
                let y = if low { z } else { 6.0 };
                (if pos { y } else { 0.0 }, u8::from(pos & low))
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

/// Multiply-accumulate `a + w·s`: fused on CPUs with FMA (inside the `avx2,fma`
/// compiled copies of the kernels), separate multiply and add elsewhere.
pub(crate) trait Mac {
    fn mac(a: f32, w: f32, s: f32) -> f32;
}
pub(crate) struct Fused;
pub(crate) struct Separate;
impl Mac for Fused {
    #[inline(always)]
    fn mac(a: f32, w: f32, s: f32) -> f32 {
        w.mul_add(s, a)
    }
}
impl Mac for Separate {
    #[inline(always)]
    fn mac(a: f32, w: f32, s: f32) -> f32 {
        a + w * s
    }
}

#[inline(always)]
fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name(args)` that runs `$generic::<Fused>` compiled for AVX2 + FMA when the CPU
/// has them (the generic code is `#[inline(always)]`, so the whole kernel is vectorized 8
/// wide), and `$generic::<Separate>` otherwise.
macro_rules! simd_kernel {
    ($name:ident => $generic:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide($($arg: $ty),*) {
                    $generic::<Fused>($($arg),*)
                }
                if has_avx2_fma() {
                    // SAFETY: the CPU features were just detected.
                    return unsafe { wide($($arg),*) };
                }
            }
            $generic::<Separate>($($arg),*)
        }
    };
}

/// Runs `f` with a thread-local scratch buffer of at least `n` floats (contents arbitrary).
/// The buffer is taken out of its thread-local slot and put back afterwards, so that `f` is
/// called (and inlined) right here — inside the kernel's AVX2 + FMA copy — rather than
/// inside `LocalKey::with`, and so that a task a waiting thread steals while the buffer is
/// out simply gets a fresh one.
#[inline(always)]
fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    scratch(&SCRATCH, n, f)
}

#[inline(always)]
fn with_scratch2<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    scratch(&SCRATCH2, n, f)
}

type Slot = std::thread::LocalKey<RefCell<Vec<f32>>>;

#[inline(always)]
fn scratch<R>(slot: &'static Slot, n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut v = slot.with(|c| std::mem::take(&mut *c.borrow_mut()));
    if v.len() < n {
        v.resize(n, 0.0);
    }
    let r = f(&mut v[..n]);
    slot.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < v.len() {
            *c = v;
        }
    });
    r
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

/// Geometry of one convolution on one image (for a depthwise one, of each plane: `cin` and
/// `cout` are then the channel count).
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

/// How the products `[m × pixels]` of each image are shared out among tasks: column tiles
/// and, where images are small (the late layers), blocks of rows, so that no task repacks a
/// large weight matrix for a handful of columns. The split depends on the image's geometry
/// only, never on the batch size, so that an image's results are bitwise the same in any
/// batch.
#[derive(Debug, Clone, Copy)]
struct Split {
    tile: usize,
    tiles: usize,
    rows: usize,
    blocks: usize,
}

impl Split {
    fn new(pixels: usize, kdim: usize, m: usize, rows_ok: bool) -> Self {
        let images = 1;
        let want = 2 * rayon::current_num_threads().max(1);
        let mut tile = column_tile(pixels, images, kdim);
        if rows_ok {
            tile = tile.max(64.min(pixels.max(1)));
        }
        let tiles = pixels.div_ceil(tile);
        let mut blocks = 1;
        if rows_ok && images * tiles < want {
            blocks = want.div_ceil(images * tiles).min(m.div_ceil(16)).max(1);
        }
        let rows = m.div_ceil(blocks).next_multiple_of(16).min(m.max(1));
        let blocks = m.div_ceil(rows).max(1);
        Self {
            tile,
            tiles,
            rows,
            blocks,
        }
    }
    fn tasks(&self, images: usize) -> usize {
        images * self.tiles * self.blocks
    }
    /// (image, first column, columns, first row, rows) of task `t`.
    fn task(&self, t: usize, pixels: usize, m: usize) -> (usize, usize, usize, usize, usize) {
        let bi = t % self.blocks;
        let ti = (t / self.blocks) % self.tiles;
        let n = t / (self.blocks * self.tiles);
        let p0 = ti * self.tile;
        let r0 = bi * self.rows;
        (n, p0, self.tile.min(pixels - p0), r0, self.rows.min(m - r0))
    }
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

/// The output columns `lo .. hi` whose kernel column `kx` falls inside the input
/// (`0 ≤ ox·s + kx − pl < w`).
fn tap_columns(g: &ConvGeom, kx: usize) -> (usize, usize) {
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
fn col2im_plane(plane: &mut [f32], ci: usize, g: &ConvGeom, p0: usize, len: usize, cols: &[f32]) {
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
    let pointwise = g.pointwise();
    let split = Split::new(pixels, kdim, g.cout, pointwise);
    let tasks = split.tasks(images);
    let par = inner_parallelism(tasks);
    let yp = SendPtr(y.as_mut_ptr());
    let mp = mask.map(|m| SendPtr(m.as_mut_ptr()));
    (0..tasks).into_par_iter().for_each(|t| {
        let (n, p0, len, r0, rows) = split.task(t, pixels, g.cout);
        let xi = &x[n * in_sz..(n + 1) * in_sz];
        let ybase = n * out_sz + r0 * pixels + p0;
        let run = |rhs: *const f32, rhs_rs: isize| {
            // SAFETY: task t writes only rows r0..r0+rows, columns p0..p0+len of image n.
            unsafe {
                matmul(
                    rows,
                    len,
                    kdim,
                    yp.at(ybase),
                    (pixels as isize, 1),
                    accumulate,
                    weight[r0 * kdim..].as_ptr(),
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
            let b = bias.map(|b| &b[r0..r0 + rows]);
            epilogue_tile_any(yp, mp, ybase, pixels, rows, len, b, act);
        }
    });
}

/// Bias, activation and mask over a `rows × len` tile of rows `stride` apart.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn epilogue_tile<M: Mac>(
    yp: SendPtr<f32>,
    mp: Option<SendPtr<u8>>,
    base: usize,
    stride: usize,
    rows: usize,
    len: usize,
    bias: Option<&[f32]>,
    act: Act,
) {
    for r in 0..rows {
        let off = base + r * stride;
        // SAFETY: the caller owns this tile of the output (and of the mask).
        let row = unsafe { std::slice::from_raw_parts_mut(yp.at(off), len) };
        let b = bias.map_or(0.0, |b| b[r]);
        match mp {
            Some(mp) => {
                let mrow = unsafe { std::slice::from_raw_parts_mut(mp.at(off), len) };
                epilogue_masked(row, mrow, b, act);
            }
            None => epilogue(row, b, act),
        }
    }
}

simd_kernel!(epilogue_tile_any => epilogue_tile(
    yp: SendPtr<f32>,
    mp: Option<SendPtr<u8>>,
    base: usize,
    stride: usize,
    rows: usize,
    len: usize,
    bias: Option<&[f32]>,
    act: Act,
));

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
                // One task per input channel when the images alone leave threads idle.
                let plane = g.h * g.w;
                if matches!(par, Parallelism::None) {
                    for (ci, p) in dxi.chunks_mut(plane).enumerate() {
                        col2im_plane(p, ci, g, 0, pixels, cols);
                    }
                } else {
                    dxi.par_chunks_mut(plane)
                        .enumerate()
                        .for_each(|(ci, p)| col2im_plane(p, ci, g, 0, pixels, cols));
                }
            });
        });
}

/// Backward-data of a 1×1 convolution or of a dense layer over pixels:
/// `dx[ci, p] (+)= Σ_co W[co, ci] · dy[co, p]`, tiled like the forward pass.
#[allow(clippy::too_many_arguments)]
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
    let split = Split::new(pixels, cout, cin, true);
    let tasks = split.tasks(images);
    let par = inner_parallelism(tasks);
    let dxp = SendPtr(dx.as_mut_ptr());
    (0..tasks).into_par_iter().for_each(|t| {
        let (n, p0, len, r0, rows) = split.task(t, pixels, cin);
        // SAFETY: task t writes only rows r0..r0+rows, columns p0..p0+len of image n.
        unsafe {
            matmul(
                rows,
                len,
                cout,
                dxp.at(n * cin * pixels + r0 * pixels + p0),
                (pixels as isize, 1),
                accumulate,
                weight[r0..].as_ptr(),
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
                *v *= f32::from(m);
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

/// Largest depthwise kernel side the direct kernels take (49 taps).
pub const MAX_DEPTHWISE_KERNEL: usize = 7;

/// `acc[i] = init + Σ_t w_t · src[i + off_t]` for every `i`: the whole plane as one long
/// vectorizable loop per group of three taps, in L1-sized chunks (the first group writes
/// `init +` its taps, so `acc` needs no clearing).
#[inline(always)]
fn taps_1d<M: Mac>(acc: &mut [f32], src: &[f32], taps: &[(usize, f32)], init: f32) {
    const CHUNK: usize = 512;
    let len = acc.len();
    let mut c0 = 0;
    while c0 < len {
        let c1 = (c0 + CHUNK).min(len);
        let a = &mut acc[c0..c1];
        let n = a.len();
        let mut t = taps;
        let mut first = true;
        while t.len() >= 3 {
            let (s0, s1, s2) = (
                &src[c0 + t[0].0..][..n],
                &src[c0 + t[1].0..][..n],
                &src[c0 + t[2].0..][..n],
            );
            let (w0, w1, w2) = (t[0].1, t[1].1, t[2].1);
            if first {
                for i in 0..n {
                    a[i] = M::mac(M::mac(M::mac(init, w0, s0[i]), w1, s1[i]), w2, s2[i]);
                }
                first = false;
            } else {
                for i in 0..n {
                    a[i] = M::mac(M::mac(M::mac(a[i], w0, s0[i]), w1, s1[i]), w2, s2[i]);
                }
            }
            t = &t[3..];
        }
        if first {
            a.fill(init);
        }
        for &(o, w) in t {
            let s0 = &src[c0 + o..][..n];
            for i in 0..n {
                a[i] = M::mac(a[i], w, s0[i]);
            }
        }
        c0 = c1;
    }
}

/// Writes the polyphase decomposition of a zero-padded plane: phase `(py, px)` (of
/// `s × s`) holds `x[r·s + py − pt][c·s + px − pl]` (masked, zero outside) at `[r][c]`,
/// `rows × pitch` each, one after another in `out`; at stride 2 without a mask, `out` has
/// room for `2 · pitch` more values after the phases (a padded row, scratch).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn phases(
    x: &[f32],
    mask: Option<&[u8]>,
    h: usize,
    w: usize,
    s: usize,
    pt: usize,
    pl: usize,
    rows: usize,
    pitch: usize,
    out: &mut [f32],
) {
    let size = rows * pitch;
    if s == 2 && mask.is_none() {
        // A row with its padding lives after the phases (see `correlate`).
        let (out, padded) = out.split_at_mut(4 * size);
        let padded = &mut padded[..2 * pitch];
        // Both column phases of a row at once: the row with its left padding, split into
        // even and odd columns (a vectorizable pairs loop).
        let (ph0, rest) = out.split_at_mut(2 * size);
        let (p00, p01) = ph0.split_at_mut(size);
        let (p10, p11) = rest.split_at_mut(size);
        for py in 0..2 {
            let (e_ph, o_ph) = if py == 0 {
                (&mut *p00, &mut *p01)
            } else {
                (&mut *p10, &mut *p11)
            };
            for r in 0..rows {
                let e = &mut e_ph[r * pitch..(r + 1) * pitch];
                let o = &mut o_ph[r * pitch..(r + 1) * pitch];
                let iy = (r * 2 + py) as isize - pt as isize;
                if iy < 0 || iy >= h as isize {
                    e.fill(0.0);
                    o.fill(0.0);
                    continue;
                }
                let src = &x[iy as usize * w..(iy as usize + 1) * w];
                let n = (w + pl).min(2 * pitch);
                padded[..pl.min(n)].fill(0.0);
                if n > pl {
                    padded[pl..n].copy_from_slice(&src[..n - pl]);
                }
                padded[n..].fill(0.0);
                for ((e, o), pair) in e.iter_mut().zip(o.iter_mut()).zip(padded.chunks_exact(2)) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
        }
        return;
    }
    for py in 0..s {
        for px in 0..s {
            let ph = &mut out[(py * s + px) * size..][..size];
            // Columns c with 0 ≤ c·s + px − pl < w.
            let lo = (pl as isize - px as isize).max(0) as usize;
            let c_lo = lo.div_ceil(s).min(pitch);
            let c_hi = if w + pl > px {
                ((w + pl - px - 1) / s + 1).min(pitch)
            } else {
                0
            }
            .max(c_lo);
            for r in 0..rows {
                let row = &mut ph[r * pitch..(r + 1) * pitch];
                let iy = (r * s + py) as isize - pt as isize;
                if iy < 0 || iy >= h as isize || c_lo == c_hi {
                    row.fill(0.0);
                    continue;
                }
                let iy = iy as usize;
                row[..c_lo].fill(0.0);
                row[c_hi..].fill(0.0);
                let src = &x[iy * w..(iy + 1) * w];
                let dst = &mut row[c_lo..c_hi];
                let x0 = c_lo * s + px - pl;
                match (s, mask) {
                    (1, None) => dst.copy_from_slice(&src[x0..x0 + dst.len()]),
                    (1, Some(m)) => {
                        let m = &m[iy * w + x0..][..dst.len()];
                        for ((d, &v), &k) in dst.iter_mut().zip(&src[x0..]).zip(m) {
                            *d = if k != 0 { v } else { 0.0 };
                        }
                    }
                    (_, m) => {
                        for (j, d) in dst.iter_mut().enumerate() {
                            let ix = x0 + j * s;
                            let keep = m.is_none_or(|m| m[iy * w + ix] != 0);
                            *d = if keep { src[ix] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }
}

/// A correlation of one plane: `out[oy][ox] = init + Σ w[ky,kx] · x[oy·s + ky − pt][ox·s + kx − pl]`
/// (zero outside `x`). Each output row, as computed, goes to `emit(oy, row)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn correlate<M: Mac>(
    x: &[f32],
    mask: Option<&[u8]>,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    (k, s, pt, pl): (usize, usize, usize, usize),
    weight: &[f32],
    init: f32,
    mut emit: impl FnMut(usize, &[f32]),
) {
    let e = (k - 1) / s;
    let (rows, pitch) = (oh + e, ow + e);
    let size = rows * pitch;
    let len = (oh - 1) * pitch + ow;
    // The phases, then room for one padded input row (used at stride 2).
    with_scratch(s * s * size + 2 * pitch, |ph| {
        phases(x, mask, h, w, s, pt, pl, rows, pitch, ph);
        let mut taps = [(0usize, 0.0f32); MAX_DEPTHWISE_KERNEL * MAX_DEPTHWISE_KERNEL];
        let mut nt = 0;
        for ky in 0..k {
            for kx in 0..k {
                let base = ((ky % s) * s + kx % s) * size;
                taps[nt] = (base + (ky / s) * pitch + kx / s, weight[ky * k + kx]);
                nt += 1;
            }
        }
        with_scratch2(len, |acc| {
            taps_1d::<M>(acc, ph, &taps[..nt], init);
            for oy in 0..oh {
                emit(oy, &acc[oy * pitch..oy * pitch + ow]);
            }
        });
    });
}

#[inline(always)]
fn dw_plane_forward<M: Mac>(
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    g: &ConvGeom,
    w: &[f32],
    b: f32,
    act: Act,
) {
    let ow = g.ow;
    let mut mask = mask;
    correlate::<M>(
        x,
        None,
        (g.h, g.w),
        (g.oh, g.ow),
        (g.k, g.stride, g.pt, g.pl),
        w,
        b,
        |oy, row| {
            let yo = &mut y[oy * ow..(oy + 1) * ow];
            match mask.as_deref_mut() {
                Some(m) => {
                    let mo = &mut m[oy * ow..(oy + 1) * ow];
                    for ((o, mm), &a) in yo.iter_mut().zip(mo).zip(row) {
                        let (v, k) = act.apply(a);
                        *o = v;
                        *mm = k;
                    }
                }
                None => {
                    for (o, &a) in yo.iter_mut().zip(row) {
                        *o = act.apply(a).0;
                    }
                }
            }
        },
    );
}

simd_kernel!(dw_plane_forward_any => dw_plane_forward(
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    g: &ConvGeom,
    w: &[f32],
    b: f32,
    act: Act,
));

/// `dst (+)= src`, or `dst = src · mask` (the gradient's own activation mask, applied
/// here when this is the only consumer of the value).
#[inline(always)]
fn store_grad(dst: &mut [f32], src: &[f32], accumulate: bool, mask: Option<&[u8]>) {
    match (accumulate, mask) {
        (true, _) => {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d += v;
            }
        }
        (false, Some(m)) => {
            for ((d, &v), &k) in dst.iter_mut().zip(src).zip(m) {
                *d = if k != 0 { v } else { 0.0 };
            }
        }
        (false, None) => dst.copy_from_slice(src),
    }
}

/// Backward-data of one plane. At stride 1 it is a correlation of the (masked) gradient
/// with the kernel rotated by 180°; at stride `s` the input pixels of each of the `s × s`
/// row/column phases receive exactly the kernel taps of the matching phase, so each phase
/// is a small dense correlation of the gradient — no zero-filled upsampling.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dw_plane_backward<M: Mac>(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    g: &ConvGeom,
    w: &[f32],
    wf: &[f32],
    accumulate: bool,
) {
    let (k, s) = (g.k, g.stride);
    if s == 1 {
        let width = g.w;
        correlate::<M>(
            dy,
            mask,
            (g.oh, g.ow),
            (g.h, g.w),
            (k, 1, k - 1 - g.pt, k - 1 - g.pl),
            wf,
            0.0,
            |iy, row| {
                let m = dx_mask.map(|m| &m[iy * width..(iy + 1) * width]);
                store_grad(&mut dx[iy * width..(iy + 1) * width], row, accumulate, m);
            },
        );
        return;
    }
    // G[r][c] = dy[r − k][c − k] (masked, zero outside), then per output phase (qy, qx):
    // dx[s·a + qy][s·b + qx] = Σ w[ky][kx] · G[a + (qy + pt − ky)/s + k][b + (qx + pl − kx)/s + k]
    // over the taps whose offsets divide exactly.
    let (t0, l0) = (k, k);
    let max_rows = g.h.div_ceil(s);
    let max_cols = g.w.div_ceil(s);
    let reach = |p: usize| p.div_ceil(s) + 1;
    let pitch = (max_cols + l0 + reach(g.pl)).max(l0 + g.ow);
    let prows = (max_rows + t0 + reach(g.pt)).max(t0 + g.oh);
    let size = prows * pitch;
    with_scratch(size, |gp| {
        phases(dy, mask, g.oh, g.ow, 1, t0, l0, prows, pitch, gp);
        let stride_q = max_rows * pitch;
        with_scratch2(s * s * stride_q, |acc| {
            let mut taps = [(0usize, 0.0f32); MAX_DEPTHWISE_KERNEL * MAX_DEPTHWISE_KERNEL];
            for qy in 0..s.min(g.h) {
                let rows = (g.h - qy).div_ceil(s);
                for qx in 0..s.min(g.w) {
                    let cols = (g.w - qx).div_ceil(s);
                    let mut nt = 0;
                    for ky in 0..k {
                        let ny = (qy + g.pt) as isize - ky as isize;
                        if ny.rem_euclid(s as isize) != 0 {
                            continue;
                        }
                        let r = (ny.div_euclid(s as isize) + t0 as isize) as usize;
                        for kx in 0..k {
                            let nx = (qx + g.pl) as isize - kx as isize;
                            if nx.rem_euclid(s as isize) != 0 {
                                continue;
                            }
                            let c = (nx.div_euclid(s as isize) + l0 as isize) as usize;
                            taps[nt] = (r * pitch + c, w[ky * k + kx]);
                            nt += 1;
                        }
                    }
                    let len = (rows - 1) * pitch + cols;
                    let a = &mut acc[(qy * s + qx) * stride_q..][..len];
                    taps_1d::<M>(a, gp, &taps[..nt], 0.0);
                }
            }
            // Interleave the column phases of each row into dx, then mask it.
            for iy in 0..g.h {
                let (qy, ar) = (iy % s, iy / s);
                let drow = &mut dx[iy * g.w..(iy + 1) * g.w];
                let base = qy * s * stride_q + ar * pitch;
                if s == 2 && g.w.is_multiple_of(2) {
                    let a0 = &acc[base..base + g.w / 2];
                    let a1 = &acc[base + stride_q..base + stride_q + g.w / 2];
                    for ((pair, &v0), &v1) in drow.chunks_exact_mut(2).zip(a0).zip(a1) {
                        if accumulate {
                            pair[0] += v0;
                            pair[1] += v1;
                        } else {
                            pair[0] = v0;
                            pair[1] = v1;
                        }
                    }
                } else {
                    for (ix, d) in drow.iter_mut().enumerate() {
                        let v = acc[base + (ix % s) * stride_q + ix / s];
                        if accumulate {
                            *d += v;
                        } else {
                            *d = v;
                        }
                    }
                }
                if let (false, Some(m)) = (accumulate, dx_mask) {
                    // Masks are 0/1: a multiply (a conditional store would compile to slow
                    // masked stores).
                    for (d, &k) in drow.iter_mut().zip(&m[iy * g.w..(iy + 1) * g.w]) {
                        *d *= f32::from(k);
                    }
                }
            }
        });
    });
}

simd_kernel!(dw_plane_backward_any => dw_plane_backward(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    g: &ConvGeom,
    w: &[f32],
    wf: &[f32],
    accumulate: bool,
));

/// Depthwise convolution of a batch (`images × channels` planes), bias, activation and
/// mask fused into each output row. `weight` is `[channels, k·k]`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_forward(
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    images: usize,
    channels: usize,
    g: &ConvGeom,
    weight: &[f32],
    bias: &[f32],
    act: Act,
) {
    if interleaved(g) {
        return depthwise_forward_interleaved(x, y, mask, images, channels, g, weight, bias, act);
    }
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    let kk = g.k * g.k;
    let planes = images * channels;
    let run = |i: usize, yo: &mut [f32], m: Option<&mut [u8]>| {
        let c = i % channels;
        dw_plane_forward_any(
            &x[i * ip..(i + 1) * ip],
            yo,
            m,
            g,
            &weight[c * kk..(c + 1) * kk],
            bias[c],
            act,
        );
    };
    for_each_plane(y, mask, op, planes, run);
}

/// Runs `f(i, plane, side)` on every output plane `i` of `planes` (`size` values each), in
/// parallel, with the matching plane of an optional per-value side output (a mask, an
/// argmax).
fn for_each_plane<T: Send>(
    y: &mut [f32],
    side: Option<&mut [T]>,
    size: usize,
    planes: usize,
    f: impl Fn(usize, &mut [f32], Option<&mut [T]>) + Sync + Send,
) {
    match side {
        Some(side) => y[..planes * size]
            .par_chunks_mut(size)
            .zip(side[..planes * size].par_chunks_mut(size))
            .enumerate()
            .for_each(|(i, (yo, s))| f(i, yo, Some(s))),
        None => y[..planes * size]
            .par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, yo)| f(i, yo, None)),
    }
}

/// Backward-data of a depthwise convolution; the gradient `dy` is multiplied by the
/// layer's activation `mask` as it is read, and the result by `dx_mask` (the activation
/// mask of the input, when this layer is its only consumer) as it is written.
/// `weight_flipped` is each channel's kernel rotated by 180° (used at stride 1).
#[allow(clippy::too_many_arguments)]
pub fn depthwise_backward(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    images: usize,
    channels: usize,
    g: &ConvGeom,
    weight: &[f32],
    weight_flipped: &[f32],
    accumulate: bool,
) {
    if interleaved(g) {
        return depthwise_backward_interleaved(
            dy, mask, dx, dx_mask, images, channels, g, weight, accumulate,
        );
    }
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
            let dmi = dx_mask.map(|m| &m[i * ip..(i + 1) * ip]);
            let w = &weight[c * kk..(c + 1) * kk];
            let wf = &weight_flipped[c * kk..(c + 1) * kk];
            dw_plane_backward_any(dyi, mi, dxi, dmi, g, w, wf, accumulate)
        });
}

// ---------------------------------------------------------------------------------------------
// Depthwise convolution of small planes, channels interleaved
// ---------------------------------------------------------------------------------------------

/// Channels per vector in the interleaved depthwise kernels.
const LANES: usize = 8;

/// Output planes at most this wide take the channel-interleaved depthwise kernels: there a
/// whole-plane correlation would spend most of its work on padding and short row tails,
/// while one vector of eight channels is always full.
const SMALL_PLANE: usize = 16;

/// Whether a depthwise layer takes the channel-interleaved kernels. (Its padding is within
/// the kernel, as the layout requires of every depthwise layer, so that the stride-1
/// backward is a plain correlation.)
fn interleaved(g: &ConvGeom) -> bool {
    debug_assert!(g.pt < g.k && g.pl < g.k);
    g.ow <= SMALL_PLANE
}

/// `v` where the 0/1 mask value `k` is 1, else 0 — by bits, branch-free.
#[inline(always)]
fn keep(v: f32, k: u8) -> f32 {
    f32::from_bits(v.to_bits() & 0u32.wrapping_sub(u32::from(k)))
}

/// Writes `n ≤ LANES` planes of `h × w` (one after another in `x`) into `xp` as a
/// `ph × pw` grid of pixels of `LANES` channels, each plane placed at row `pt`, column `pl`,
/// zeros elsewhere and in unused lanes. `mask` zeroes the values it marks 0 as they are read.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn interleave(
    x: &[f32],
    mask: Option<&[u8]>,
    n: usize,
    (h, w): (usize, usize),
    (ph, pw): (usize, usize),
    (pt, pl): (usize, usize),
    xp: &mut [f32],
) {
    let xp = &mut xp[..ph * pw * LANES];
    xp.fill(0.0);
    let rows = h.min(ph.saturating_sub(pt));
    let cols = w.min(pw.saturating_sub(pl));
    for l in 0..n {
        for iy in 0..rows {
            let src = &x[(l * h + iy) * w..][..cols];
            let dst = &mut xp[((iy + pt) * pw + pl) * LANES..][..cols * LANES];
            match mask {
                Some(m) => {
                    let m = &m[(l * h + iy) * w..][..cols];
                    for ((d, &v), &k) in dst.chunks_exact_mut(LANES).zip(src).zip(m) {
                        d[l] = keep(v, k);
                    }
                }
                None => {
                    for (d, &v) in dst.chunks_exact_mut(LANES).zip(src) {
                        d[l] = v;
                    }
                }
            }
        }
    }
}

/// `out[oy][ox] = init + Σ_{ky,kx} w[ky·k + kx] · xp[oy·s + ky][ox·s + kx]`, every term a
/// vector of `LANES` channels; `xp` is `pw` pixels wide, `out` is `oh × ow`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn correlate_lanes<M: Mac>(
    xp: &[f32],
    pw: usize,
    (oh, ow): (usize, usize),
    (k, s): (usize, usize),
    w: &[f32],
    init: &[f32; LANES],
    out: &mut [f32],
) {
    for oy in 0..oh {
        let mut ox = 0;
        while ox < ow {
            let at = (oy, ox, ow, pw, k, s);
            ox += match ow - ox {
                1 => lanes_block::<M, 1>(xp, at, w, init, out),
                2 => lanes_block::<M, 2>(xp, at, w, init, out),
                3 => lanes_block::<M, 3>(xp, at, w, init, out),
                4 => lanes_block::<M, 4>(xp, at, w, init, out),
                5 => lanes_block::<M, 5>(xp, at, w, init, out),
                6 => lanes_block::<M, 6>(xp, at, w, init, out),
                7 => lanes_block::<M, 7>(xp, at, w, init, out),
                _ => lanes_block::<M, 8>(xp, at, w, init, out),
            };
        }
    }
}

/// `P` consecutive output pixels of [`correlate_lanes`], kept in registers across all taps;
/// returns `P`.
#[inline(always)]
fn lanes_block<M: Mac, const P: usize>(
    xp: &[f32],
    (oy, ox, ow, pw, k, s): (usize, usize, usize, usize, usize, usize),
    w: &[f32],
    init: &[f32; LANES],
    out: &mut [f32],
) -> usize {
    let first = (oy * s * pw + ox * s) * LANES;
    let last = ((oy * s + k - 1) * pw + ox * s + (P - 1) * s + k) * LANES;
    assert!(last <= xp.len() && k * k * LANES <= w.len());
    let mut a = [*init; P];
    // SAFETY: every vector read lies between `first` and `last` of `xp` (rows oy·s .. oy·s +
    // k − 1, columns ox·s .. ox·s + (P − 1)·s + k − 1) or inside the k² vectors of `w`, both
    // checked above; [f32; LANES] needs only f32 alignment.
    unsafe {
        let x0 = xp.as_ptr().add(first);
        let mut wp = w.as_ptr() as *const [f32; LANES];
        for ky in 0..k {
            let row = x0.add(ky * pw * LANES);
            for kx in 0..k {
                let wv = *wp;
                wp = wp.add(1);
                for (p, ap) in a.iter_mut().enumerate() {
                    let xv = *(row.add((p * s + kx) * LANES) as *const [f32; LANES]);
                    for l in 0..LANES {
                        ap[l] = M::mac(ap[l], wv[l], xv[l]);
                    }
                }
            }
        }
    }
    let dst = &mut out[(oy * ow + ox) * LANES..][..P * LANES];
    for (d, ap) in dst.chunks_exact_mut(LANES).zip(&a) {
        d.copy_from_slice(ap);
    }
    P
}

/// The kernels of channels `c0 .. c0 + n` (`n ≤ LANES`) as one vector per tap (the first
/// `kk` vectors), zeros in unused lanes; `flip` rotates each kernel by 180°.
fn kernel_lanes(
    weight: &[f32],
    kk: usize,
    c0: usize,
    n: usize,
    flip: bool,
) -> [f32; MAX_DEPTHWISE_KERNEL * MAX_DEPTHWISE_KERNEL * LANES] {
    let mut w = [0.0; MAX_DEPTHWISE_KERNEL * MAX_DEPTHWISE_KERNEL * LANES];
    for l in 0..n {
        let src = &weight[(c0 + l) * kk..(c0 + l + 1) * kk];
        for (t, &v) in src.iter().enumerate() {
            let t = if flip { kk - 1 - t } else { t };
            w[t * LANES + l] = v;
        }
    }
    w
}

/// Forward of one group of `n ≤ LANES` planes of one image: `x` and `y` hold the group's
/// input and output planes, `mask` (if any) receives the activation's gradient mask.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dw_group_forward<M: Mac>(
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    n: usize,
    g: &ConvGeom,
    w: &[f32],
    init: &[f32; LANES],
    act: Act,
    xp: &mut [f32],
    out: &mut [f32],
) {
    let (ph, pw) = ((g.oh - 1) * g.stride + g.k, (g.ow - 1) * g.stride + g.k);
    interleave(x, None, n, (g.h, g.w), (ph, pw), (g.pt, g.pl), xp);
    correlate_lanes::<M>(xp, pw, (g.oh, g.ow), (g.k, g.stride), w, init, out);
    let op = g.oh * g.ow;
    let out = &out[..op * LANES];
    match mask {
        Some(m) => {
            for l in 0..n {
                let (yl, ml) = (&mut y[l * op..][..op], &mut m[l * op..][..op]);
                for ((o, mm), v) in yl.iter_mut().zip(ml).zip(out.chunks_exact(LANES)) {
                    (*o, *mm) = act.apply(v[l]);
                }
            }
        }
        None => {
            for l in 0..n {
                for (o, v) in y[l * op..][..op].iter_mut().zip(out.chunks_exact(LANES)) {
                    *o = act.apply(v[l]).0;
                }
            }
        }
    }
}

simd_kernel!(dw_group_forward_any => dw_group_forward(
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    n: usize,
    g: &ConvGeom,
    w: &[f32],
    init: &[f32; LANES],
    act: Act,
    xp: &mut [f32],
    out: &mut [f32],
));

/// Backward-data of one group of `n ≤ LANES` planes of one image (see
/// [`depthwise_backward`]); `w` is the group's kernels as lanes, rotated by 180° at stride 1.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dw_group_backward<M: Mac>(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    n: usize,
    g: &ConvGeom,
    w: &[f32],
    accumulate: bool,
    gp: &mut [f32],
    out: &mut [f32],
) {
    let (k, s) = (g.k, g.stride);
    let ip = g.h * g.w;
    // `out` receives dx as a grid of pixels `cols` wide, the image at (top, left).
    let (cols, top, left);
    if s == 1 {
        // A correlation of the gradient, padded by k − 1 − padding, with the rotated kernel.
        let (ph, pw) = (g.h + k - 1, g.w + k - 1);
        interleave(
            dy,
            mask,
            n,
            (g.oh, g.ow),
            (ph, pw),
            (k - 1 - g.pt, k - 1 - g.pl),
            gp,
        );
        correlate_lanes::<M>(gp, pw, (g.h, g.w), (k, 1), w, &[0.0; LANES], out);
        (cols, top, left) = (g.w, 0, 0);
    } else {
        // Each gradient pixel adds its kernel, scaled, into the padded input grid.
        interleave(dy, mask, n, (g.oh, g.ow), (g.oh, g.ow), (0, 0), gp);
        let rows = ((g.oh - 1) * s + k).max(g.pt + g.h);
        cols = ((g.ow - 1) * s + k).max(g.pl + g.w);
        (top, left) = (g.pt, g.pl);
        let out = &mut out[..rows * cols * LANES];
        out.fill(0.0);
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let gv = &gp[(oy * g.ow + ox) * LANES..][..LANES];
                for ky in 0..k {
                    let row = &mut out[((oy * s + ky) * cols + ox * s) * LANES..][..k * LANES];
                    for (d, wv) in row
                        .chunks_exact_mut(LANES)
                        .zip(w[ky * k * LANES..][..k * LANES].chunks_exact(LANES))
                    {
                        for l in 0..LANES {
                            d[l] = M::mac(d[l], wv[l], gv[l]);
                        }
                    }
                }
            }
        }
    }
    for l in 0..n {
        let dxl = &mut dx[l * ip..][..ip];
        let ml = dx_mask.map(|m| &m[l * ip..][..ip]);
        for iy in 0..g.h {
            let src = &out[((iy + top) * cols + left) * LANES..][..g.w * LANES];
            let drow = &mut dxl[iy * g.w..][..g.w];
            match (accumulate, ml) {
                (true, _) => {
                    for (d, v) in drow.iter_mut().zip(src.chunks_exact(LANES)) {
                        *d += v[l];
                    }
                }
                (false, Some(m)) => {
                    let m = &m[iy * g.w..][..g.w];
                    for ((d, v), &k) in drow.iter_mut().zip(src.chunks_exact(LANES)).zip(m) {
                        *d = keep(v[l], k);
                    }
                }
                (false, None) => {
                    for (d, v) in drow.iter_mut().zip(src.chunks_exact(LANES)) {
                        *d = v[l];
                    }
                }
            }
        }
    }
}

simd_kernel!(dw_group_backward_any => dw_group_backward(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    n: usize,
    g: &ConvGeom,
    w: &[f32],
    accumulate: bool,
    gp: &mut [f32],
    out: &mut [f32],
));

/// Runs `f(image, c0, n)` for every group of up to [`LANES`] channels of every image, in
/// parallel.
fn for_each_group(images: usize, channels: usize, f: impl Fn(usize, usize, usize) + Sync + Send) {
    let groups = channels.div_ceil(LANES);
    (0..images * groups).into_par_iter().for_each(|t| {
        let (img, c0) = (t / groups, (t % groups) * LANES);
        f(img, c0, LANES.min(channels - c0));
    });
}

#[allow(clippy::too_many_arguments)]
fn depthwise_forward_interleaved(
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    images: usize,
    channels: usize,
    g: &ConvGeom,
    weight: &[f32],
    bias: &[f32],
    act: Act,
) {
    let (ip, op, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let total = images * channels * op;
    assert!(y.len() >= total && mask.as_ref().is_none_or(|m| m.len() >= total));
    let yp = SendPtr(y.as_mut_ptr());
    let mp = mask.map(|m| SendPtr(m.as_mut_ptr()));
    let (ph, pw) = ((g.oh - 1) * g.stride + g.k, (g.ow - 1) * g.stride + g.k);
    for_each_group(images, channels, |img, c0, n| {
        let w = kernel_lanes(weight, kk, c0, n, false);
        let mut init = [0.0; LANES];
        init[..n].copy_from_slice(&bias[c0..c0 + n]);
        let off = img * channels + c0;
        // SAFETY: this task alone writes planes c0 .. c0 + n of this image (checked above to
        // lie inside `y` and `mask`).
        let yt = unsafe { std::slice::from_raw_parts_mut(yp.at(off * op), n * op) };
        let mt = mp.map(|m| unsafe { std::slice::from_raw_parts_mut(m.at(off * op), n * op) });
        with_scratch(ph * pw * LANES, |xp| {
            with_scratch2(op * LANES, |out| {
                let xt = &x[off * ip..(off + n) * ip];
                dw_group_forward_any(xt, yt, mt, n, g, &w, &init, act, xp, out);
            })
        });
    });
}

#[allow(clippy::too_many_arguments)]
fn depthwise_backward_interleaved(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    images: usize,
    channels: usize,
    g: &ConvGeom,
    weight: &[f32],
    accumulate: bool,
) {
    let (ip, op, k) = (g.h * g.w, g.oh * g.ow, g.k);
    let total = images * channels * ip;
    assert!(dx.len() >= total);
    let dxp = SendPtr(dx.as_mut_ptr());
    let grid = if g.stride == 1 {
        (g.h + k - 1) * (g.w + k - 1)
    } else {
        op
    };
    let out =
        ((g.oh - 1) * g.stride + k).max(g.pt + g.h) * ((g.ow - 1) * g.stride + k).max(g.pl + g.w);
    for_each_group(images, channels, |img, c0, n| {
        let w = kernel_lanes(weight, k * k, c0, n, g.stride == 1);
        let off = img * channels + c0;
        // SAFETY: this task alone writes planes c0 .. c0 + n of this image of `dx`.
        let dxt = unsafe { std::slice::from_raw_parts_mut(dxp.at(off * ip), n * ip) };
        let dyt = &dy[off * op..(off + n) * op];
        let mt = mask.map(|m| &m[off * op..(off + n) * op]);
        let dmt = dx_mask.map(|m| &m[off * ip..(off + n) * ip]);
        with_scratch(grid * LANES, |gp| {
            with_scratch2(out.max(ip) * LANES, |o| {
                dw_group_backward_any(dyt, mt, dxt, dmt, n, g, &w, accumulate, gp, o);
            })
        });
    });
}

// ---------------------------------------------------------------------------------------------
// Dense layers
// ---------------------------------------------------------------------------------------------

/// `Σ a[i]·b[i]` in sixteen running sums.
#[inline(always)]
fn dot<M: Mac>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] = M::mac(acc[l], x[l], y[l]);
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (&x, &y) in ra.iter().zip(rb) {
        s = M::mac(s, x, y);
    }
    s
}

/// `y[i][j] = bias[j] + W[j] · x[i]` for the outputs `j0 .. j0 + cols` of every image (`y`
/// is `[images, outputs]`): each weight row is read once for all images.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dense_block<M: Mac>(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    images: usize,
    (inputs, outputs): (usize, usize),
    (j0, cols): (usize, usize),
    y: SendPtr<f32>,
) {
    for j in j0..j0 + cols {
        let w = &weight[j * inputs..][..inputs];
        for i in 0..images {
            let v = bias[j] + dot::<M>(w, &x[i * inputs..][..inputs]);
            // SAFETY: the caller's task alone writes outputs j0 .. j0 + cols of every image,
            // and `y` holds `images × outputs` values.
            unsafe { *y.at(i * outputs + j) = v };
        }
    }
}

simd_kernel!(dense_block_any => dense_block(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    images: usize,
    dims: (usize, usize),
    block: (usize, usize),
    y: SendPtr<f32>,
));

/// `dx[i][k] (+)= Σ_j dy[i][j] · W[j][k]` for the inputs `k0 .. k0 + cols` of every image
/// (`dx` is `[images, inputs]`): each weight row segment is read once for all images.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dense_backward_block<M: Mac>(
    dy: &[f32],
    weight: &[f32],
    images: usize,
    (inputs, outputs): (usize, usize),
    (k0, cols): (usize, usize),
    dx: SendPtr<f32>,
    accumulate: bool,
) {
    // SAFETY: the caller's task alone writes inputs k0 .. k0 + cols of every image, and `dx`
    // holds `images × inputs` values.
    let row = |i: usize| unsafe { std::slice::from_raw_parts_mut(dx.at(i * inputs + k0), cols) };
    if !accumulate {
        for i in 0..images {
            row(i).fill(0.0);
        }
    }
    for j in 0..outputs {
        // Outputs with no gradient in any image cost no weight reads: a class score's
        // gradient has one nonzero output, a ReLU's often half.
        if (0..images).all(|i| dy[i * outputs + j] == 0.0) {
            continue;
        }
        let w = &weight[j * inputs + k0..][..cols];
        for i in 0..images {
            let g = dy[i * outputs + j];
            for (d, &v) in row(i).iter_mut().zip(w) {
                *d = M::mac(*d, g, v);
            }
        }
    }
}

simd_kernel!(dense_backward_block_any => dense_backward_block(
    dy: &[f32],
    weight: &[f32],
    images: usize,
    dims: (usize, usize),
    block: (usize, usize),
    dx: SendPtr<f32>,
    accumulate: bool,
));

/// Columns of a dense layer's weight that one task takes (a block of outputs forward, of
/// inputs backward): enough tasks for every thread, each a whole number of vectors.
fn dense_block_size(n: usize) -> usize {
    let tasks = 4 * rayon::current_num_threads().max(1);
    n.div_ceil(tasks).next_multiple_of(16).max(16)
}

/// Dense layer `y = x Wᵀ + bias` for `images` rows of `inputs` values; `weight` is
/// `[outputs, inputs]`. A matrix–vector product per image is bound by reading the weights,
/// so they are read once per pass, in blocks of outputs shared out over the threads (a
/// general matrix product would first copy them into its packed layout).
pub fn dense_forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    images: usize,
    (inputs, outputs): (usize, usize),
    y: &mut [f32],
) {
    assert!(
        x.len() >= images * inputs
            && y.len() >= images * outputs
            && weight.len() >= inputs * outputs
            && bias.len() >= outputs
    );
    let yp = SendPtr(y.as_mut_ptr());
    let bs = dense_block_size(outputs);
    (0..outputs.div_ceil(bs)).into_par_iter().for_each(|b| {
        let j0 = b * bs;
        let block = (j0, bs.min(outputs - j0));
        dense_block_any(x, weight, bias, images, (inputs, outputs), block, yp);
    });
}

/// Backward-data of [`dense_forward`]: `dx (+)= dy W`, in blocks of inputs; weight rows of
/// outputs whose gradient is zero in every image are skipped.
pub fn dense_backward(
    dy: &[f32],
    weight: &[f32],
    images: usize,
    (inputs, outputs): (usize, usize),
    dx: &mut [f32],
    accumulate: bool,
) {
    assert!(
        dy.len() >= images * outputs
            && dx.len() >= images * inputs
            && weight.len() >= inputs * outputs
    );
    let dxp = SendPtr(dx.as_mut_ptr());
    let bs = dense_block_size(inputs);
    (0..inputs.div_ceil(bs)).into_par_iter().for_each(|b| {
        let k0 = b * bs;
        let block = (k0, bs.min(inputs - k0));
        dense_backward_block_any(
            dy,
            weight,
            images,
            (inputs, outputs),
            block,
            dxp,
            accumulate,
        );
    });
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
    let pairs = g.k == 2 && g.stride == 2 && g.pad == 0 && 2 * g.oh <= g.h && 2 * g.ow <= g.w;
    let plane = |i: usize, yo: &mut [f32], mut am: Option<&mut [u32]>| {
        let xi = &x[i * ip..(i + 1) * ip];
        if pairs {
            return pool2_plane_any(xi, yo, am, g);
        }
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
    for_each_plane(y, argmax, op, planes, plane);
}

/// A 2×2, stride-2 max-pool of one plane whose windows all lie inside it: branch-free, so
/// that rows vectorize. Same choice as the general loop (first maximum in row-major order,
/// a NaN wins).
#[inline(always)]
fn pool2_plane<M: Mac>(xi: &[f32], yo: &mut [f32], am: Option<&mut [u32]>, g: &PoolGeom) {
    let mut am = am;
    for oy in 0..g.oh {
        let (r0, r1) = (2 * oy * g.w, (2 * oy + 1) * g.w);
        let (x0, x1) = (&xi[r0..r0 + 2 * g.ow], &xi[r1..r1 + 2 * g.ow]);
        let y = &mut yo[oy * g.ow..(oy + 1) * g.ow];
        let take = |best: &mut f32, at: &mut u32, v: f32, i: u32| {
            let t = v > *best || v.is_nan();
            *best = if t { v } else { *best };
            *at = if t { i } else { *at };
        };
        match am.as_deref_mut() {
            Some(am) => {
                let a = &mut am[oy * g.ow..(oy + 1) * g.ow];
                for (ox, (o, at)) in y.iter_mut().zip(a).enumerate() {
                    let c = 2 * ox;
                    let (mut best, mut i) = (x0[c], (r0 + c) as u32);
                    take(&mut best, &mut i, x0[c + 1], (r0 + c + 1) as u32);
                    take(&mut best, &mut i, x1[c], (r1 + c) as u32);
                    take(&mut best, &mut i, x1[c + 1], (r1 + c + 1) as u32);
                    *o = best;
                    *at = i;
                }
            }
            None => {
                for (ox, o) in y.iter_mut().enumerate() {
                    let c = 2 * ox;
                    let (mut best, mut i) = (x0[c], 0);
                    take(&mut best, &mut i, x0[c + 1], 0);
                    take(&mut best, &mut i, x1[c], 0);
                    take(&mut best, &mut i, x1[c + 1], 0);
                    *o = best;
                }
            }
        }
    }
}

simd_kernel!(pool2_plane_any => pool2_plane(
    xi: &[f32],
    yo: &mut [f32],
    am: Option<&mut [u32]>,
    g: &PoolGeom,
));

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
