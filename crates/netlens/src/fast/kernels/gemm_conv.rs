//! Dense and 1×1 convolutions as `gemm` products: forward as tiled im2col (a 1×1 layer
//! reads its input directly) with bias, activation and gradient mask fused into each
//! cache-hot output tile (large products on small planes take all of an image's columns
//! per product, see [`Split::whole`]); backward-data of a 1×1 layer as the transposed
//! product, of a strided one as `col2im(Wᵀ · dy)`, both from a row-major `Wᵀ` where the
//! layer keeps one ([`Transposed`]), each able to apply the input's activation mask as it
//! writes the gradient (in `gemm_conv/backward.rs`). (A stride-1 k×k backward is a forward
//! convolution with the flipped, transposed kernel; the runner sets that up.) im2col and
//! col2im are in `gemm_conv/columns.rs`, unit tests in `gemm_conv/tests.rs`. Stride-1
//! layers with many inputs and few outputs on small planes skip im2col for shifted
//! products (`gemm_conv/shifted.rs`). On small planes a batch's images share one product
//! per 1×1 layer (`gemm_conv/grouped.rs`), and every product blocks its reduction by `k`
//! alone ([`matmul`]), so an image gives the same bytes alone and in any batch.

use super::{dispatch, with_scratch, Act, Mac, SendPtr, Simd};
use gemm::Parallelism;
use rayon::prelude::*;

/// A strided matrix inside a live buffer: its first element and (row, column) strides in
/// elements.
#[derive(Clone, Copy)]
pub(crate) struct Mat<P> {
    pub ptr: P,
    pub rs: isize,
    pub cs: isize,
}

impl<P> Mat<P> {
    /// A row-major matrix whose rows are `rs` apart.
    pub(crate) fn rows(ptr: P, rs: usize) -> Self {
        Self {
            ptr,
            rs: rs as isize,
            cs: 1,
        }
    }
}

/// Most terms of the reduction in one call of the gemm crate (see [`matmul`]).
const REDUCTION_BLOCK: usize = 512;

/// `dst (+)= lhs · rhs` for `m×k` times `k×n`.
///
/// The reduction runs in `⌈k / 512⌉` equal blocks, one call each, the later ones adding
/// to `dst`: the crate blocks it itself by `min(k, 512)` when both sides of the output are
/// at most 64, else by what it derives from the L1 cache (512 on Zen 3, so `⌈k / 512⌉`
/// equal blocks), so that an output value's bits would follow the product's shape, and a
/// product spanning a batch's images (`gemm_conv/grouped.rs`) would differ from one image's.
/// A call of at most 512 terms is one block on every path and machine.
///
/// # Safety
/// The matrices must lie inside live buffers, and `dst` must not overlap the inputs or be
/// written concurrently by another task.
pub(crate) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: Mat<*mut f32>,
    accumulate: bool,
    lhs: Mat<*const f32>,
    rhs: Mat<*const f32>,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    *dst.ptr.offset(i as isize * dst.rs + j as isize * dst.cs) = 0.0;
                }
            }
        }
        return;
    }
    let blocks = k.div_ceil(REDUCTION_BLOCK);
    let kc = k.div_ceil(blocks);
    for b in 0..blocks {
        let (k0, kb) = (b * kc, kc.min(k - b * kc));
        gemm::gemm(
            m,
            n,
            kb,
            dst.ptr,
            dst.cs,
            dst.rs,
            accumulate || b > 0,
            lhs.ptr.offset(k0 as isize * lhs.cs),
            lhs.cs,
            lhs.rs,
            rhs.ptr.offset(k0 as isize * rhs.rs),
            rhs.cs,
            rhs.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
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

/// Tasks one image's product is split into at most, for parallelism within an image. A fixed
/// number, chosen when the gemm crate's blocking of the reduction still followed the calls'
/// shapes; since [`matmul`] pins that blocking the bytes no longer depend on the split (the
/// grouped products of `gemm_conv/grouped.rs` follow the thread count). Batches give
/// further tasks, one set per image.
const SPLIT_TASKS: usize = 8;

/// Largest im2col buffer (floats) of one image for which a layer's products take all of
/// the image's columns ([`Split::whole`]).
const WHOLE_FLOATS: usize = 1 << 18;

/// Largest plane (output pixels) for which a layer's products take all of the image's
/// columns.
const WHOLE_PIXELS: usize = 256;

/// Fewest multiply-adds of one image's product for which a layer's products take all of
/// the image's columns.
const WHOLE_MIN_MACS: usize = 32 << 20;

/// Row blocks of such a product, each its own gemm call on one thread (fixed, like
/// [`SPLIT_TASKS`]). The gemm crate sharing one product among 2 threads reached 157–181
/// GFLOP/s on ResNet-50's 7×7 and 14×14 layers (`[m × pixels × kdim]` = 512 × 49 × 4608,
/// 512 × 49 × 2048, 256 × 196 × 1024, 256 × 196 × 2304), two half products side by side
/// 219–253; ResNet-50 f+b at batch 1 went from 91 to 86–88 ms.
const WHOLE_BLOCKS: usize = 2;

/// Column-tile size for one image's `pixels`, so that the tiles give [`SPLIT_TASKS`] tasks
/// and a tile's im2col block stays cache-sized.
fn column_tile(pixels: usize, kdim: usize) -> usize {
    let tasks = SPLIT_TASKS;
    let by_tasks = pixels.div_ceil(tasks);
    let by_cache = (96 * 1024 / kdim.max(1)).max(32);
    let tile = by_tasks.min(by_cache).clamp(16.min(pixels.max(1)), 1024);
    // Whole micro-kernel panels of 16 columns (see `gemm_conv/grouped.rs`): a 28×28 plane
    // in eight tiles of 98 filled each tile's last panel to 2 of 16; seven of 112 fill all.
    tile.next_multiple_of(16).min(pixels.max(1))
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
        let want = SPLIT_TASKS;
        let mut tile = column_tile(pixels, kdim);
        if rows_ok {
            tile = tile.max(64.min(pixels.max(1)));
        }
        let tiles = pixels.div_ceil(tile);
        let mut blocks = 1;
        if rows_ok && tiles < want {
            blocks = want.div_ceil(tiles).min(m.div_ceil(16)).max(1);
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
    /// All of an image's columns in each product, its rows in [`WHOLE_BLOCKS`] blocks, each
    /// parallel inside only when the tasks leave threads idle.
    fn whole(pixels: usize, m: usize) -> Self {
        let rows = m.div_ceil(WHOLE_BLOCKS).next_multiple_of(16).min(m.max(1));
        Self {
            tile: pixels.max(1),
            tiles: 1,
            rows,
            blocks: m.div_ceil(rows).max(1),
        }
    }
    /// Whether a layer's products take all of an image's columns ([`Split::whole`]): small
    /// planes with large products, always for 1×1 layers (no im2col buffer), else while one
    /// image's im2col buffer stays small.
    fn whole_ok(pixels: usize, kdim: usize, m: usize, pointwise: bool) -> bool {
        pixels <= WHOLE_PIXELS
            && m * pixels * kdim >= WHOLE_MIN_MACS
            && (pointwise || pixels * kdim <= WHOLE_FLOATS)
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

/// A dense convolution (`groups = 1`) as [`conv_forward`] runs it.
#[derive(Debug, Clone, Copy)]
pub struct ConvLayer<'a> {
    pub g: &'a ConvGeom,
    /// `[cout, cin·k·k]`.
    pub weight: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub act: Act,
    /// The kernel transformed for Winograd ([`super::winograd::transform_weights`]), when
    /// the lowering chose it for this 3×3 stride-1 layer.
    pub winograd: Option<&'a [f32]>,
}

/// Dense convolution of a batch: `y (+)= W ⋆ x`, then, in the same pass over each
/// cache-hot output tile, `+ bias`, the activation, and its gradient mask. With
/// `accumulate` the product is added to `y`.
pub fn conv_forward(
    layer: &ConvLayer,
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    images: usize,
    accumulate: bool,
) {
    let mp = mask.map(|m| SendPtr(m.as_mut_ptr()));
    forward(layer, x, y, (mp, None, Act::None, None), images, accumulate);
}

/// `y = W ⋆ x` (no bias, no activation), then `y *= keep` in the same pass over each
/// cache-hot output tile: the backward-data pass of a stride-1 convolution (the flipped
/// kernel over the output's gradient) writing the gradient of an input whose only reader it
/// is with that input's activation mask already applied — the same values as
/// [`apply_mask`](super::apply_mask) after it.
pub fn conv_forward_keep(layer: &ConvLayer, x: &[f32], y: &mut [f32], keep: &[u8], images: usize) {
    debug_assert!(layer.bias.is_none() && layer.act == Act::None);
    let out = images * layer.g.cout * layer.g.oh * layer.g.ow;
    assert!(keep.len() >= out, "mask shorter than the output");
    let kp = SendPtr(keep.as_ptr().cast_mut());
    forward(
        layer,
        x,
        y,
        (None, None, Act::None, Some(kp)),
        images,
        false,
    );
}

/// [`conv_forward`] followed by a smooth activation (`smooth`, see [`Act::is_smooth`];
/// `layer.act` is then [`Act::None`]), applied in the same pass over each output tile,
/// writing its derivative into `deriv` when given (one float per output value).
pub fn conv_forward_smooth(
    layer: &ConvLayer,
    smooth: Act,
    x: &[f32],
    y: &mut [f32],
    deriv: Option<&mut [f32]>,
    images: usize,
) {
    debug_assert!(layer.act == Act::None && smooth.is_smooth());
    let dp = deriv.map(|d| SendPtr(d.as_mut_ptr()));
    forward(layer, x, y, (None, dp, smooth, None), images, false);
}

/// What an epilogue writes besides the output: a ReLU-family mask, or a smooth
/// activation's derivative (and which smooth activation); and a 0/1 mask that it
/// multiplies the output by last (read only).
type Side = (
    Option<SendPtr<u8>>,
    Option<SendPtr<f32>>,
    Act,
    Option<SendPtr<u8>>,
);

fn forward(
    layer: &ConvLayer,
    x: &[f32],
    y: &mut [f32],
    side: Side,
    images: usize,
    accumulate: bool,
) {
    let (mp, dp, smooth, kp) = side;
    let &ConvLayer {
        g,
        weight,
        bias,
        act,
        winograd,
    } = layer;
    let (in_sz, out_sz) = (g.cin * g.h * g.w, g.cout * g.oh * g.ow);
    debug_assert!(x.len() >= images * in_sz && y.len() >= images * out_sz);
    let pixels = g.oh * g.ow;
    let epilogue =
        bias.is_some() || act != Act::None || mp.is_some() || smooth != Act::None || kp.is_some();
    let yp = SendPtr(y.as_mut_ptr());
    // The epilogue over `rows` output rows `stride` apart from `base`, `len` values each,
    // the first of them output channel `co`.
    let tile = |base: usize, co: usize, rows: usize, stride: usize, len: usize| {
        dispatch(EpilogueTile {
            y: yp,
            mask: mp,
            deriv: dp,
            keep: kp,
            smooth,
            base,
            stride,
            rows,
            len,
            bias: bias.map(|b| &b[co..co + rows]),
            act,
        })
    };
    if let Some(u) = winograd.filter(|u| super::winograd::eligible(g, u)) {
        // Output rows r0 .. r0 + rows of channel co of image n, one contiguous run.
        let epi = |n: usize, co: usize, r0: usize, rows: usize| {
            if epilogue {
                tile(n * out_sz + co * pixels + r0 * g.ow, co, 1, 0, rows * g.ow);
            }
        };
        super::winograd::forward(g, u, x, y, images, accumulate, &epi);
        return;
    }
    let kdim = g.kdim();
    let pointwise = g.pointwise();
    if pointwise && grouped::grouped_ok(pixels, images) {
        let all: Vec<usize> = (0..images).collect();
        let ops = grouped::Operands {
            src: x,
            src_size: in_sz,
            dst: yp,
            dst_size: out_sz,
        };
        // SAFETY: y holds every image's output (checked above) and is written here alone.
        unsafe {
            grouped::grouped_product(
                &all,
                (g.cout, kdim, pixels),
                &ops,
                accumulate,
                |r0| Mat::rows(weight[r0 * kdim..].as_ptr(), kdim),
                |n, r0, rows| {
                    if epilogue {
                        tile(n * out_sz + r0 * pixels, r0, rows, pixels, pixels);
                    }
                },
            );
        }
        return;
    }
    if shifted::shifted_ok(g) {
        let epi = |n: usize, r0: usize, rows: usize| {
            if epilogue {
                tile(n * out_sz + r0 * g.ow, 0, g.cout, pixels, rows * g.ow);
            }
        };
        // SAFETY: y holds every image's output (checked above) and is written here alone.
        unsafe { shifted::forward(g, weight, x, yp, images, accumulate, &epi) };
        return;
    }
    let split = if Split::whole_ok(pixels, kdim, g.cout, pointwise) {
        Split::whole(pixels, g.cout)
    } else {
        Split::new(pixels, kdim, g.cout, pointwise)
    };
    let tasks = split.tasks(images);
    let par = inner_parallelism(tasks);
    (0..tasks).into_par_iter().for_each(|t| {
        let (n, p0, len, r0, rows) = split.task(t, pixels, g.cout);
        let xi = &x[n * in_sz..(n + 1) * in_sz];
        let ybase = n * out_sz + r0 * pixels + p0;
        let run = |rhs: *const f32, rhs_rs: usize| {
            // SAFETY: task t writes only rows r0..r0+rows, columns p0..p0+len of image n.
            unsafe {
                matmul(
                    (rows, len, kdim),
                    Mat::rows(yp.at(ybase), pixels),
                    accumulate,
                    Mat::rows(weight[r0 * kdim..].as_ptr(), kdim),
                    Mat::rows(rhs, rhs_rs),
                    par,
                );
            }
        };
        if pointwise {
            run(xi[p0..].as_ptr(), pixels);
        } else {
            with_scratch(kdim * len, |cols| {
                columns::im2col(xi, g, p0, len, cols);
                run(cols.as_ptr(), len);
            });
        }
        if epilogue {
            let block = epilogue_rows(rows, par);
            (0..rows.div_ceil(block)).into_par_iter().for_each(|b| {
                let (q0, qn) = (b * block, block.min(rows - b * block));
                tile(ybase + q0 * pixels, r0 + q0, qn, pixels, len);
            });
        }
    });
}

/// Rows per parallel block of a task's epilogue pass over its `rows` output rows: all of
/// them when the product ran on this thread alone, else blocks that share the pass out
/// among the threads the product had to itself.
fn epilogue_rows(rows: usize, par: Parallelism) -> usize {
    if matches!(par, Parallelism::None) {
        rows
    } else {
        rows.div_ceil(4 * rayon::current_num_threads()).max(1)
    }
}

/// Bias, activation and mask (or a smooth activation and its derivative), then the product
/// with `keep`, over a `rows × len` tile of rows `stride` apart, from `base`.
struct EpilogueTile<'a> {
    y: SendPtr<f32>,
    mask: Option<SendPtr<u8>>,
    deriv: Option<SendPtr<f32>>,
    keep: Option<SendPtr<u8>>,
    smooth: Act,
    base: usize,
    stride: usize,
    rows: usize,
    len: usize,
    bias: Option<&'a [f32]>,
    act: Act,
}

impl Simd for EpilogueTile<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let Self {
            y,
            mask,
            deriv,
            keep,
            smooth,
            base,
            stride,
            rows,
            len,
            bias,
            act,
        } = self;
        for r in 0..rows {
            let off = base + r * stride;
            // SAFETY: the caller owns this tile of the output (and of the mask).
            let row = unsafe { std::slice::from_raw_parts_mut(y.at(off), len) };
            if let Some(kp) = keep {
                // Backward-data: no bias, no activation (see `conv_forward_keep`).
                // SAFETY: the mask covers the output; this tile is only read.
                let k = unsafe { std::slice::from_raw_parts(kp.at(off).cast_const(), len) };
                for (v, &k) in row.iter_mut().zip(k) {
                    *v *= f32::from(k); // as `mask_slice`, in this dispatched copy
                }
                continue;
            }
            let b = bias.map_or(0.0, |b| b[r]);
            if smooth != Act::None {
                // SAFETY: as for the output: this tile of the derivative is the caller's.
                let drow = deriv.map(|d| unsafe { std::slice::from_raw_parts_mut(d.at(off), len) });
                super::smooth::row(smooth, row, drow, b);
                continue;
            }
            match mask {
                Some(mp) => {
                    let mrow = unsafe { std::slice::from_raw_parts_mut(mp.at(off), len) };
                    epilogue_masked(row, mrow, b, act);
                }
                None => epilogue(row, b, act),
            }
        }
    }
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

/// Plain references for the unit tests: direct loops over every tap.
pub mod reference {
    use super::{ConvGeom, ConvLayer};

    /// The input pixel tap `(ky, kx)` of output `(oy, ox)` reads, if inside the image.
    pub fn tap(g: &ConvGeom, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
        let iy = (oy * g.stride + ky).checked_sub(g.pt)?;
        let ix = (ox * g.stride + kx).checked_sub(g.pl)?;
        (iy < g.h && ix < g.w).then_some(iy * g.w + ix)
    }

    /// [`conv_forward`](super::conv_forward) of one image.
    pub fn conv_forward(layer: &ConvLayer, x: &[f32], y: &mut [f32], mask: &mut [u8], acc: bool) {
        let g = layer.g;
        let (k, plane) = (g.k, g.oh * g.ow);
        for co in 0..g.cout {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let o = co * plane + oy * g.ow + ox;
                    let mut s = if acc { y[o] } else { 0.0 };
                    for ci in 0..g.cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                if let Some(i) = tap(g, oy, ox, ky, kx) {
                                    let w = layer.weight[((co * g.cin + ci) * k + ky) * k + kx];
                                    s += w * x[ci * g.h * g.w + i];
                                }
                            }
                        }
                    }
                    let b = layer.bias.map_or(0.0, |b| b[co]);
                    (y[o], mask[o]) = layer.act.apply(s + b);
                }
            }
        }
    }

    /// Backward-data of a dense convolution of one image: every output gradient scattered
    /// back through every tap.
    pub fn conv_backward(g: &ConvGeom, weight: &[f32], dy: &[f32], dx: &mut [f32], acc: bool) {
        let k = g.k;
        if !acc {
            dx.fill(0.0);
        }
        for co in 0..g.cout {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let d = dy[(co * g.oh + oy) * g.ow + ox];
                    for ci in 0..g.cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                if let Some(i) = tap(g, oy, ox, ky, kx) {
                                    let w = weight[((co * g.cin + ci) * k + ky) * k + kx];
                                    dx[ci * g.h * g.w + i] += w * d;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

mod backward;
mod columns;
mod grouped;
mod shifted;
pub use backward::{conv_backward_col2im, pointwise_backward, Transposed};

#[cfg(test)]
mod tests;
