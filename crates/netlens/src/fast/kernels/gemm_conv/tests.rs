//! Unit tests of `gemm_conv` against the plain `reference` loops: forward with each fused
//! activation, the smooth epilogue, backward (both `Wᵀ` layouts), and the byte identity of
//! one-product-per-image layers across thread counts and batches.
use super::super::testing::{assert_close, on_threads, random};
use super::*;

fn geom(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    h: usize,
    w: usize,
) -> ConvGeom {
    let (oh, ow) = (
        (h + 2 * pad - k) / stride + 1,
        (w + 2 * pad - k) / stride + 1,
    );
    ConvGeom {
        cin,
        cout,
        k,
        stride,
        pt: pad,
        pl: pad,
        h,
        w,
        oh,
        ow,
    }
}

const CASES: [(usize, usize, usize, usize, usize, usize, usize); 5] = [
    (3, 5, 1, 1, 0, 7, 9),
    (4, 6, 3, 1, 1, 9, 8),
    (3, 7, 3, 2, 1, 11, 10),
    (5, 4, 5, 2, 2, 13, 12),
    (2, 3, 3, 2, 0, 8, 7),
];

#[test]
fn forward_matches_reference() {
    for (i, &(cin, cout, k, s, p, h, w)) in CASES.iter().enumerate() {
        let g = geom(cin, cout, k, s, p, h, w);
        let images = 3;
        let (isz, osz) = (cin * h * w, cout * g.oh * g.ow);
        let x = random(images * isz, i as u64);
        let weight = random(cout * cin * k * k, 10 + i as u64);
        let bias = random(cout, 20 + i as u64);
        for (act, acc) in [(Act::Relu6, false), (Act::Relu, true), (Act::None, false)] {
            let layer = ConvLayer {
                g: &g,
                weight: &weight,
                bias: Some(&bias),
                act,
                winograd: None,
            };
            let y0 = random(images * osz, 30 + i as u64);
            let (mut y, mut m) = (y0.clone(), vec![0u8; images * osz]);
            conv_forward(&layer, &x, &mut y, Some(&mut m), images, acc);
            for n in 0..images {
                let (mut yr, mut mr) = (y0[n * osz..(n + 1) * osz].to_vec(), vec![0; osz]);
                reference::conv_forward(&layer, &x[n * isz..(n + 1) * isz], &mut yr, &mut mr, acc);
                assert_close(&y[n * osz..(n + 1) * osz], &yr, 1e-5);
                if act == Act::None {
                    assert!(m[n * osz..(n + 1) * osz].iter().all(|&v| v == 1));
                }
            }
        }
    }
}

#[test]
fn smooth_epilogue_matches_reference() {
    // The reference convolution (no activation), then each smooth activation and its
    // derivative from float64 definitions.
    use super::super::smooth::reference::smooth;
    for (i, &(cin, cout, k, s, p, h, w)) in CASES.iter().enumerate() {
        let g = geom(cin, cout, k, s, p, h, w);
        let images = 2;
        let (isz, osz) = (cin * h * w, cout * g.oh * g.ow);
        let x: Vec<f32> = random(images * isz, 70 + i as u64)
            .iter()
            .map(|v| 3.0 * v)
            .collect();
        let weight = random(cout * cin * k * k, 80 + i as u64);
        let bias = random(cout, 90 + i as u64);
        let layer = ConvLayer {
            g: &g,
            weight: &weight,
            bias: Some(&bias),
            act: Act::None,
            winograd: None,
        };
        for act in [Act::Silu, Act::HardSwish, Act::HardSigmoid, Act::Sigmoid] {
            let (mut y, mut d) = (vec![0.0; images * osz], vec![0.0; images * osz]);
            conv_forward_smooth(&layer, act, &x, &mut y, Some(&mut d), images);
            for n in 0..images {
                let mut z = vec![0.0; osz];
                let mut m = vec![0; osz];
                reference::conv_forward(&layer, &x[n * isz..(n + 1) * isz], &mut z, &mut m, false);
                let (want_y, want_d): (Vec<f32>, Vec<f32>) =
                    z.iter().map(|&v| smooth(act, v)).unzip();
                assert_close(&y[n * osz..(n + 1) * osz], &want_y, 1e-5);
                assert_close(&d[n * osz..(n + 1) * osz], &want_d, 1e-5);
            }
        }
    }
}

#[test]
fn backward_matches_reference() {
    for (i, &(cin, cout, k, s, p, h, w)) in CASES.iter().enumerate() {
        let g = geom(cin, cout, k, s, p, h, w);
        let images = 2;
        let (isz, osz) = (cin * h * w, cout * g.oh * g.ow);
        let dy = random(images * osz, 40 + i as u64);
        let weight = random(cout * cin * k * k, 50 + i as u64);
        let kdim = cin * k * k;
        let weight_tr = super::super::transpose(&weight, cout, kdim);
        for acc in [false, true] {
            let dx0 = random(images * isz, 60 + i as u64);
            // Both layouts of Wᵀ, through the layer's backward path.
            let run = |wt: Transposed| {
                let mut dx = dx0.clone();
                if g.pointwise() {
                    pointwise_backward(&dy, &mut dx, images, &g, wt, acc, None);
                } else {
                    conv_backward_col2im(&dy, &mut dx, images, &g, wt, acc, None);
                }
                dx
            };
            let dx = run(Transposed::Copy(&weight_tr));
            assert_close(&run(Transposed::Strided(&weight)), &dx, 1e-5);
            for n in 0..images {
                let mut want = dx0[n * isz..(n + 1) * isz].to_vec();
                reference::conv_backward(&g, &weight, &dy[n * osz..(n + 1) * osz], &mut want, acc);
                assert_close(&dx[n * isz..(n + 1) * isz], &want, 1e-5);
            }
        }
    }
}

/// Layers whose products take all of an image's columns (ResNet-50's 7×7- and 14×14-plane
/// layers, in two fixed row blocks, each shared among threads inside by the gemm crate when
/// threads are left over) give the same bytes for any thread count, and an image the same
/// bytes alone and in a batch: the crate splits the output among threads, never the
/// reduction, and its blocking follows the shape only.
#[test]
fn whole_products_same_bytes_for_any_threads_and_batch() {
    // (cin, cout, k, stride, pad, side): 1×1 and strided 1×1, 3×3 and strided 3×3.
    for &(cin, cout, k, s, p, side) in &[
        (2048, 512, 1, 1, 0, 7),
        (1024, 1024, 1, 2, 0, 14),
        (512, 512, 3, 1, 1, 7),
        (256, 512, 3, 2, 1, 14),
    ] {
        let g = geom(cin, cout, k, s, p, side, side);
        let kdim = cin * k * k;
        assert!(Split::whole_ok(g.oh * g.ow, kdim, cout, g.pointwise()));
        let images = 3;
        let (isz, osz) = (cin * side * side, cout * g.oh * g.ow);
        let x = random(images * isz, 3);
        let dy = random(images * osz, 4);
        let weight = random(cout * kdim, 5);
        let weight_tr = super::super::transpose(&weight, cout, kdim);
        let bias = random(cout, 6);
        let layer = ConvLayer {
            g: &g,
            weight: &weight,
            bias: Some(&bias),
            act: Act::Relu,
            winograd: None,
        };
        let run = |threads: usize, n: usize| {
            on_threads(threads, || {
                let (mut y, mut dx) = (vec![0.0; n * osz], vec![0.0; n * isz]);
                conv_forward(&layer, &x[..n * isz], &mut y, None, n, false);
                let (dy, wt) = (&dy[..n * osz], Transposed::Copy(&weight_tr));
                if g.pointwise() {
                    pointwise_backward(dy, &mut dx, n, &g, wt, false, None);
                } else {
                    conv_backward_col2im(dy, &mut dx, n, &g, wt, false, None);
                }
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(&y), bits(&dx))
            })
        };
        let (y1, dx1) = run(1, images);
        for threads in [2, 3] {
            let (y, dx) = run(threads, images);
            assert!(
                y == y1 && dx == dx1,
                "{cin}→{cout} k{k} s{s}: {threads} threads differ"
            );
        }
        // One image: two row blocks on 2 threads, and on 3 (the third inside a block).
        for threads in [2, 3] {
            let (y, dx) = run(threads, 1);
            assert!(
                y[..] == y1[..osz] && dx[..] == dx1[..isz],
                "{cin}→{cout} k{k} s{s}: an image alone ({threads} threads) differs"
            );
        }
    }
}

/// Writing an input's gradient with its activation mask applied in the same pass gives the
/// bytes of the plain backward pass followed by `apply_mask`, on every backward path: 1×1
/// products (tiled and whole), col2im (strided and padded), and the flipped-kernel
/// convolution of a stride-1 layer by Winograd and by im2col.
#[test]
fn masking_as_the_gradient_is_written_keeps_the_bytes() {
    use super::super::{apply_mask, testing::random_mask, winograd};
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let images = 2;
    let mut cases = CASES.to_vec();
    cases.push((2048, 512, 1, 1, 0, 7, 7)); // one whole product per image
    for (i, &(cin, cout, k, s, p, h, w)) in cases.iter().enumerate() {
        let g = geom(cin, cout, k, s, p, h, w);
        let (isz, osz) = (cin * h * w, cout * g.oh * g.ow);
        let mut dy = random(images * osz, 70 + i as u64);
        dy[0] = -dy[0].abs(); // a negative value masked: −0.0, as apply_mask gives it
        let weight = random(cout * cin * k * k, 80 + i as u64);
        let weight_tr = super::super::transpose(&weight, cout, cin * k * k);
        let keep = random_mask(images * isz, 90 + i as u64);
        let (mut want, mut got) = (vec![0.0; images * isz], vec![0.0; images * isz]);
        let wt = Transposed::Copy(&weight_tr);
        if g.pointwise() {
            pointwise_backward(&dy, &mut want, images, &g, wt, false, None);
            pointwise_backward(&dy, &mut got, images, &g, wt, false, Some(&keep));
        } else {
            conv_backward_col2im(&dy, &mut want, images, &g, wt, false, None);
            conv_backward_col2im(&dy, &mut got, images, &g, wt, false, Some(&keep));
        }
        apply_mask(&mut want, &keep);
        assert_eq!(bits(&got), bits(&want), "case {i}");
    }
    // The flipped-kernel path: a 3×3 stride-1 layer's backward as a forward convolution,
    // by Winograd (F(2,3) and F(4,3)) and without.
    for (cin, cout, side) in [(16, 24, 13), (64, 32, 28)] {
        let g = geom(cin, cout, 3, 1, 1, side, side);
        let x = random(images * cin * side * side, 7);
        let weight = random(cout * cin * 9, 8);
        let keep = random_mask(images * cout * side * side, 9);
        let osz = images * cout * side * side;
        for m in [None, Some(2), Some(4)] {
            let u = m.map(|m| winograd::transform_weights(&weight, cout, cin, m));
            let layer = ConvLayer {
                g: &g,
                weight: &weight,
                bias: None,
                act: Act::None,
                winograd: u.as_deref(),
            };
            let (mut want, mut got) = (vec![0.0; osz], vec![0.0; osz]);
            conv_forward(&layer, &x, &mut want, None, images, false);
            apply_mask(&mut want, &keep);
            conv_forward_keep(&layer, &x, &mut got, &keep, images);
            assert_eq!(bits(&got), bits(&want), "{cin}→{cout} {m:?}");
        }
    }
}

/// A 1×1 layer's backward on an output gradient that reaches few channels (a class score
/// through SqueezeNet's convolutional classifier) sums over those channels only: the same
/// values as the reference (1e-5), with and without accumulation, both layouts of `Wᵀ`, an
/// all-zero image, a dense image beside the sparse ones, the input's mask applied as
/// `apply_mask` would; and an image gives the same bytes alone and in the batch.
#[test]
fn sparse_output_gradients_sum_over_their_channels() {
    use super::super::{apply_mask, testing::random_mask};
    for &(cin, cout, side) in &[(40, 96, 13), (512, 1000, 13), (24, 200, 30)] {
        let g = geom(cin, cout, 1, 1, 0, side, side);
        let (pixels, images) = (side * side, 4);
        let (isz, osz) = (cin * pixels, cout * pixels);
        let weight = random(cout * cin, 1);
        let weight_tr = super::super::transpose(&weight, cout, cin);
        // Image 0: one live channel; 1: two (one a NaN-free row with a negative zero
        // elsewhere); 2: none; 3: every channel.
        let mut dy = vec![0.0f32; images * osz];
        dy[5 * pixels..6 * pixels].copy_from_slice(&random(pixels, 2));
        dy[osz + 3 * pixels..osz + 4 * pixels].copy_from_slice(&random(pixels, 3));
        dy[osz + (cout - 1) * pixels + 1] = 0.5;
        dy[osz + 7 * pixels] = -0.0;
        dy[3 * osz..].copy_from_slice(&random(osz, 4));
        let live = |n: usize| super::backward::live_channels(&dy[n * osz..][..osz], cout, pixels);
        assert_eq!(
            (live(0), live(1), live(2), live(3)),
            (Some(vec![5]), Some(vec![3, cout - 1]), Some(vec![]), None)
        );
        let keep = random_mask(images * isz, 5);
        for acc in [false, true] {
            let dx0 = random(images * isz, 6);
            let run = |wt: Transposed, n0: usize, n: usize, keep: Option<&[u8]>| {
                let mut dx = dx0[n0 * isz..(n0 + n) * isz].to_vec();
                let dyn_ = &dy[n0 * osz..(n0 + n) * osz];
                pointwise_backward(dyn_, &mut dx, n, &g, wt, acc, keep);
                dx
            };
            let dx = run(Transposed::Copy(&weight_tr), 0, images, None);
            assert_close(
                &run(Transposed::Strided(&weight), 0, images, None),
                &dx,
                1e-5,
            );
            for n in 0..images {
                let mut want = dx0[n * isz..(n + 1) * isz].to_vec();
                reference::conv_backward(&g, &weight, &dy[n * osz..(n + 1) * osz], &mut want, acc);
                assert_close(&dx[n * isz..(n + 1) * isz], &want, 1e-5);
                let alone = run(Transposed::Copy(&weight_tr), n, 1, None);
                let same = alone
                    .iter()
                    .zip(&dx[n * isz..])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{cin}→{cout}: image {n} differs alone and in the batch"
                );
            }
            if !acc {
                let masked = run(Transposed::Copy(&weight_tr), 0, images, Some(&keep));
                let mut want = dx.clone();
                apply_mask(&mut want, &keep);
                let same = masked
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{cin}→{cout}: the mask as the gradient is written differs"
                );
            }
        }
    }
}

/// 1×1 layers on small planes run the images of a batch side by side in one product
/// (`grouped.rs`): the values match the reference (1e-5), and every image gives the same
/// bytes alone and in the batch, on 1 and 2 threads — forward with an activation and its
/// mask, accumulating or not; backward with the input's mask, beside an image whose
/// gradient reaches one channel (summed apart). 1152 inputs take the crate's reduction in
/// several blocks; 7 images on a 10×10 plane make groups of 5 and 2.
#[test]
fn grouped_small_planes_same_bytes_alone_and_in_a_batch() {
    use super::super::testing::random_mask;
    for &(cin, cout, side, images) in &[(1152, 192, 7, 3), (192, 1152, 7, 2), (24, 40, 10, 7)] {
        let g = geom(cin, cout, 1, 1, 0, side, side);
        let pixels = side * side;
        assert!(super::grouped::grouped_ok(pixels, images));
        let (isz, osz) = (cin * pixels, cout * pixels);
        let x = random(images * isz, 11);
        let weight = random(cout * cin, 12);
        let weight_tr = super::super::transpose(&weight, cout, cin);
        let bias = random(cout, 13);
        let y0 = random(images * osz, 14);
        let dx0 = random(images * isz, 15);
        let mut dy = random(images * osz, 16);
        // Image 1's gradient reaches channel 3 only.
        dy[osz..2 * osz].fill(0.0);
        dy[osz + 3 * pixels..osz + 4 * pixels].copy_from_slice(&random(pixels, 17));
        let keep = random_mask(images * isz, 18);
        let layer = ConvLayer {
            g: &g,
            weight: &weight,
            bias: Some(&bias),
            act: Act::Relu,
            winograd: None,
        };
        // Forward and backward of images n0 .. n0 + n.
        let run = |threads: usize, n0: usize, n: usize, acc: bool| {
            on_threads(threads, || {
                let (mut y, mut m) = (y0[n0 * osz..(n0 + n) * osz].to_vec(), vec![0; n * osz]);
                conv_forward(
                    &layer,
                    &x[n0 * isz..(n0 + n) * isz],
                    &mut y,
                    Some(&mut m),
                    n,
                    acc,
                );
                let mut dx = dx0[n0 * isz..(n0 + n) * isz].to_vec();
                let dyn_ = &dy[n0 * osz..(n0 + n) * osz];
                let wt = Transposed::Copy(&weight_tr);
                let k = (!acc).then(|| &keep[n0 * isz..(n0 + n) * isz]);
                pointwise_backward(dyn_, &mut dx, n, &g, wt, acc, k);
                (y, m, dx)
            })
        };
        for acc in [false, true] {
            let (y, m, dx) = run(1, 0, images, acc);
            for n in 0..images {
                check_forward(&layer, (&x, &y0, &y, &m), n, acc);
                let mut want_dx = dx0[n * isz..(n + 1) * isz].to_vec();
                reference::conv_backward(&g, &weight, &dy[n * osz..], &mut want_dx, acc);
                if !acc {
                    super::super::apply_mask(&mut want_dx, &keep[n * isz..(n + 1) * isz]);
                }
                assert_close(&dx[n * isz..(n + 1) * isz], &want_dx, 1e-5);
            }
            let what = format!("{cin}→{cout} on {side}² ({acc})");
            assert_same_bytes(&what, |t, n0, n| run(t, n0, n, acc), images, (osz, isz), 1);
        }
    }
}

#[test]
fn shifted_products_match_reference_and_keep_the_bytes() {
    use super::super::testing::random_mask;
    // SqueezeNet's transposed 3×3 on 13² (padding 1), a valid 3×3 (no padding), a 5×5
    // with padding 2 on a non-square plane, and a kernel wider than tall planes need.
    for &(cin, cout, k, pad, h, w, images) in &[
        (96, 24, 3, 1, 13, 13, 3),
        (64, 16, 3, 0, 9, 11, 2),
        (80, 8, 5, 2, 6, 10, 5),
    ] {
        let g = geom(cin, cout, k, 1, pad, h, w);
        assert!(super::shifted::shifted_ok(&g), "{g:?}");
        let (isz, osz) = (cin * h * w, cout * g.oh * g.ow);
        let x = random(images * isz, 21);
        let weight = random(cout * cin * k * k, 22);
        let bias = random(cout, 23);
        let y0 = random(images * osz, 24);
        let keep = random_mask(images * osz, 25);
        let layer = ConvLayer {
            g: &g,
            weight: &weight,
            bias: Some(&bias),
            act: Act::Relu,
            winograd: None,
        };
        let plain = ConvLayer {
            bias: None,
            act: Act::None,
            ..layer
        };
        // Forward (with bias, ReLU and mask; accumulating or not) and the masked form the
        // backward passes use, of images n0 .. n0 + n.
        let run = |threads: usize, n0: usize, n: usize, acc: bool| {
            on_threads(threads, || {
                let xs = &x[n0 * isz..(n0 + n) * isz];
                let (mut y, mut m) = (y0[n0 * osz..(n0 + n) * osz].to_vec(), vec![0; n * osz]);
                conv_forward(&layer, xs, &mut y, Some(&mut m), n, acc);
                let mut yk = vec![0.0; n * osz];
                conv_forward_keep(&plain, xs, &mut yk, &keep[n0 * osz..(n0 + n) * osz], n);
                (y, m, yk)
            })
        };
        for acc in [false, true] {
            let (y, m, yk) = run(1, 0, images, acc);
            for n in 0..images {
                check_forward(&layer, (&x, &y0, &y, &m), n, acc);
                let (mut want_k, mut unused) = (vec![0.0; osz], vec![0; osz]);
                reference::conv_forward(&plain, &x[n * isz..], &mut want_k, &mut unused, false);
                super::super::apply_mask(&mut want_k, &keep[n * osz..(n + 1) * osz]);
                assert_close(&yk[n * osz..(n + 1) * osz], &want_k, 1e-5);
            }
            // Alone on two threads: an image's rows in two blocks (one block in the batch).
            let what = format!("{g:?} ({acc})");
            assert_same_bytes(&what, |t, n0, n| run(t, n0, n, acc), images, (osz, osz), 2);
        }
    }
}

/// Checks that `run(threads, n0, n)` — a layer's outputs `(values, mask, second values)` for
/// images `n0 .. n0 + n`, `sizes` floats of each output per image — gives every image the same
/// bytes alone (on `alone_threads` threads) as in the whole batch on one thread, and the whole
/// batch the same bytes on two threads.
fn assert_same_bytes(
    what: &str,
    run: impl Fn(usize, usize, usize) -> (Vec<f32>, Vec<u8>, Vec<f32>),
    images: usize,
    (a, b): (usize, usize),
    alone_threads: usize,
) {
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let (y, m, z) = run(1, 0, images);
    for n in 0..images {
        let (ya, ma, za) = run(alone_threads, n, 1);
        assert!(
            bits(&ya) == bits(&y[n * a..(n + 1) * a])
                && ma[..] == m[n * a..(n + 1) * a]
                && bits(&za) == bits(&z[n * b..(n + 1) * b]),
            "{what}: image {n} differs alone and in the batch"
        );
    }
    let (y2, m2, z2) = run(2, 0, images);
    assert!(
        bits(&y2) == bits(&y) && m2 == m && bits(&z2) == bits(&z),
        "{what}: 2 threads differ"
    );
}

/// Checks image `n`'s forward output and mask (`y`, `m`: the batch's, started from `y0`)
/// against the reference loop on its input in `x`.
fn check_forward(
    layer: &ConvLayer,
    (x, y0, y, m): (&[f32], &[f32], &[f32], &[u8]),
    n: usize,
    acc: bool,
) {
    let g = layer.g;
    let (isz, osz) = (g.cin * g.h * g.w, g.cout * g.oh * g.ow);
    let (mut want_y, mut want_m) = (y0[n * osz..(n + 1) * osz].to_vec(), vec![0; osz]);
    reference::conv_forward(layer, &x[n * isz..], &mut want_y, &mut want_m, acc);
    assert_close(&y[n * osz..(n + 1) * osz], &want_y, 1e-5);
    assert_eq!(m[n * osz..(n + 1) * osz], want_m[..]);
}
