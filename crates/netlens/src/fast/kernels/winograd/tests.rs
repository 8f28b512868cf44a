//! Unit tests of `winograd`: against a float64 direct loop on odd shapes, an image's bytes
//! alone and in a batch, and which layers it takes.
use super::super::gemm_conv::{conv_forward, ConvLayer};
use super::super::testing::random;
use super::super::Act;
use super::*;

/// Float64 direct convolution of one image (no bias, no activation).
fn direct64(g: &ConvGeom, w: &[f32], x: &[f32]) -> Vec<f64> {
    let mut y = vec![0.0f64; g.cout * g.oh * g.ow];
    for co in 0..g.cout {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut s = 0.0f64;
                for ci in 0..g.cin {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (oy + ky, ox + kx);
                            if iy < g.pt || ix < g.pl || iy - g.pt >= g.h || ix - g.pl >= g.w {
                                continue;
                            }
                            let v = x[(ci * g.h + iy - g.pt) * g.w + ix - g.pl];
                            s += f64::from(w[((co * g.cin + ci) * 3 + ky) * 3 + kx]) * f64::from(v);
                        }
                    }
                }
                y[(co * g.oh + oy) * g.ow + ox] = s;
            }
        }
    }
    y
}

/// Worst error relative to the largest output magnitude.
fn worst(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (f64::from(g) - w).abs() / scale)
        .fold(0.0, f64::max)
}

fn geom(cin: usize, cout: usize, pad: usize, h: usize, w: usize) -> ConvGeom {
    ConvGeom {
        cin,
        cout,
        k: 3,
        stride: 1,
        pt: pad,
        pl: pad,
        h,
        w,
        oh: h + 2 * pad - 2,
        ow: w + 2 * pad - 2,
    }
}

/// Odd channels, odd planes (partial tiles on both edges), paddings 0, 1, 2, batch 1 and
/// 3 (blocks spanning images), with and without bias + ReLU + mask and accumulation;
/// against float64. The im2col + gemm path on the same data sets the
/// float32 noise floor: F(2,3) stays within 1e-5 of the largest output, F(4,3) within
/// 5e-5 (its transforms scale intermediates by up to 8 and 1/24, ~4–10× F(2,3)'s
/// rounding; measured below ~2e-5 on these shapes).
#[test]
fn matches_direct_float64() {
    let cases = [
        (17, 19, 1, 17, 13, 1),
        (16, 33, 1, 15, 15, 3),
        (21, 16, 0, 20, 17, 1),
        (18, 20, 2, 13, 11, 3),
        (64, 24, 1, 30, 29, 1),
        // Wider than FUSED_CHANNELS: the phased path.
        (150, 120, 1, 17, 15, 2),
    ];
    for (i, &(cin, cout, pad, h, w, images)) in cases.iter().enumerate() {
        let g = geom(cin, cout, pad, h, w);
        let (isz, osz) = (cin * h * w, cout * g.oh * g.ow);
        let x = random(images * isz, 100 + i as u64);
        let wt = random(cout * cin * 9, 200 + i as u64);
        let bias = random(cout, 300 + i as u64);
        for (m, tol) in [(2, 1e-5), (4, 5e-5)] {
            let u = transform_weights(&wt, cout, cin, m);
            assert!(eligible(&g, &u), "case {i} would not run by Winograd");
            for (act, acc) in [(Act::None, false), (Act::Relu, false), (Act::None, true)] {
                let layer = ConvLayer {
                    g: &g,
                    weight: &wt,
                    bias: Some(&bias),
                    act,
                    winograd: Some(&u),
                };
                let y0 = random(images * osz, 400 + i as u64);
                let mut y = y0.clone();
                let mut mask = vec![7u8; images * osz];
                conv_forward(&layer, &x, &mut y, Some(&mut mask), images, acc);
                let plain = ConvLayer {
                    winograd: None,
                    ..layer
                };
                let (mut yg, mut mg) = (y0.clone(), vec![7u8; images * osz]);
                conv_forward(&plain, &x, &mut yg, Some(&mut mg), images, acc);
                for n in 0..images {
                    let d = direct64(&g, &wt, &x[n * isz..][..isz]);
                    let want: Vec<f64> = d
                        .iter()
                        .enumerate()
                        .map(|(o, &v)| {
                            let prev = if acc { f64::from(y0[n * osz + o]) } else { 0.0 };
                            let z = prev + v + f64::from(bias[o / (g.oh * g.ow)]);
                            if act == Act::Relu {
                                z.max(0.0)
                            } else {
                                z
                            }
                        })
                        .collect();
                    let e = worst(&y[n * osz..][..osz], &want);
                    let eg = worst(&yg[n * osz..][..osz], &want);
                    eprintln!("case {i} F({m},3) {act:?} acc {acc}: {e:.1e} (gemm {eg:.1e})");
                    assert!(e < tol, "case {i} F({m},3): {e:.2e}");
                    // Masks agree wherever the value is not at the kink.
                    for o in 0..osz {
                        if want[o].abs() > 1e-3 {
                            assert_eq!(mask[n * osz + o], mg[n * osz + o]);
                        }
                    }
                }
            }
        }
    }
}

/// An image gives the same bytes alone and inside a batch whose blocks span images
/// (the blocks' gemms then have other column counts).
#[test]
fn batch_does_not_change_the_bytes() {
    // The last two are wider than FUSED_CHANNELS (phased, blocks spanning images).
    for (cin, cout, side) in [
        (40, 24, 23),
        (32, 48, 13),
        (64, 64, 56),
        (160, 128, 13),
        (144, 144, 9),
    ] {
        let g = geom(cin, cout, 1, side, side);
        let (isz, osz, images) = (cin * side * side, cout * side * side, 5);
        let x = random(images * isz, 7);
        let wt = random(cout * cin * 9, 8);
        let u = transform_weights(&wt, cout, cin, TILE);
        let layer = ConvLayer {
            g: &g,
            weight: &wt,
            bias: None,
            act: Act::None,
            winograd: Some(&u),
        };
        let mut all = vec![0.0; images * osz];
        conv_forward(&layer, &x, &mut all, None, images, false);
        for n in 0..images {
            let mut one = vec![0.0; osz];
            conv_forward(&layer, &x[n * isz..][..isz], &mut one, None, 1, false);
            let same = one
                .iter()
                .zip(&all[n * osz..][..osz])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{cin}→{cout} at {side}²: image {n} differs in a batch"
            );
        }
    }
}

#[test]
fn chooses_only_3x3_stride_1_wide_layers() {
    let fwd = |cout, cin, k, stride| choose(cout, cin, k, stride, Pass::Forward);
    assert_eq!(fwd(64, 64, 3, 1), Some(Tiling::Fixed(TILE)));
    assert_eq!(choose(64, 64, 3, 1, Pass::Backward), Some(Tiling::ByPlane));
    assert_eq!(fwd(64, 64, 3, 2), None);
    assert_eq!(fwd(64, 64, 1, 1), None);
    // Widths (cin·cout / (cin + cout)) below MIN_WIDTH: SqueezeNet's 16 → 64 and 32 → 128
    // expand layers and their transposes.
    assert_eq!(fwd(64, 16, 3, 1), None);
    assert_eq!(fwd(16, 64, 3, 1), None);
    assert_eq!(fwd(128, 32, 3, 1), None);
    assert_eq!(choose(32, 128, 3, 1, Pass::Backward), None);
    assert_eq!(fwd(192, 48, 3, 1), Some(Tiling::Fixed(TILE)));
    // Transformed on first use, and only for planes of enough tiles: 7×7 never, 16×16
    // (16 tiles, under SMALL_TILES) only from width MIN_WIDTH_SMALL on, 24×24 from MIN_WIDTH.
    let w = random(64 * 64 * 9, 1);
    let lazy = LazyWeights::new(64, 64, 3, 1, Pass::Forward);
    for side in [7, 16] {
        assert!(lazy.get(&w, &geom(64, 64, 1, side, side)).is_none());
    }
    assert!(lazy.cells.iter().all(|c| c.get().is_none()));
    assert_eq!(
        lazy.get(&w, &geom(64, 64, 1, 24, 24)).map(<[f32]>::len),
        Some((TILE + 2).pow(2) * 64 * 64)
    );
    let w = random(128 * 128 * 9, 2);
    let wide = LazyWeights::new(128, 128, 3, 1, Pass::Forward);
    assert!(wide.get(&w, &geom(128, 128, 1, 16, 16)).is_some());
    // The backward pass, wide (phased) layers: F(2,3) on 16×16 (16 tiles, under
    // SMALL_TILES), F(4,3) on 24×24 (36 tiles); each set transformed once, on first use.
    let w = random(160 * 160 * 9, 3);
    let back = LazyWeights::new(160, 160, 3, 1, Pass::Backward);
    let len = |side: usize| {
        back.get(&w, &geom(160, 160, 1, side, side))
            .map(<[f32]>::len)
    };
    assert_eq!(len(16), Some(16 * 160 * 160));
    assert!(back.cells[1].get().is_none());
    assert_eq!(len(24), Some(36 * 160 * 160));
    assert_eq!(len(16), Some(16 * 160 * 160));
    // Narrow (fused) layers: F(4,3) only where its blocks hold F4_BLOCK_TILES tiles: on
    // 112² (7 rows of 28 tiles), not on 56² (4 rows of 14).
    let w = random(64 * 64 * 9, 4);
    let back = LazyWeights::new(64, 64, 3, 1, Pass::Backward);
    let len = |side: usize| back.get(&w, &geom(64, 64, 1, side, side)).map(<[f32]>::len);
    assert_eq!(len(56), Some(16 * 64 * 64));
    assert_eq!(len(112), Some(36 * 64 * 64));
}

/// The fused and the phased path give the same bytes (each tile's sum over the input
/// channels runs in the same order whatever its block), for F(2,3) and F(4,3), with and
/// without accumulation; blocks of several rows with a short last one, and
/// of the one-row floor (260 wide).
#[test]
fn fused_and_phased_give_the_same_bytes() {
    for (i, &(cin, cout, h, w, images)) in [
        (32, 16, 23, 17, 3),
        (48, 40, 9, 30, 2),
        (64, 64, 112, 20, 1),
        (64, 64, 6, 260, 2),
    ]
    .iter()
    .enumerate()
    {
        let g = geom(cin, cout, 1, h, w);
        let (isz, osz) = (cin * h * w, cout * g.oh * g.ow);
        let x = random(images * isz, 500 + i as u64);
        let wt = random(cout * cin * 9, 600 + i as u64);
        let y0 = random(images * osz, 700 + i as u64);
        for m in [2, 4] {
            let u = transform_weights(&wt, cout, cin, m);
            for acc in [false, true] {
                let (mut a, mut b) = (y0.clone(), y0.clone());
                let none: Epilogue = &|_, _, _, _| {};
                fused(&g, &u, &x, &mut a, images, acc, none);
                phased(&g, &u, &x, &mut b, images, acc, none);
                let same = a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "case {i} F({m},3) acc {acc}: fused and phased differ");
            }
        }
    }
}
