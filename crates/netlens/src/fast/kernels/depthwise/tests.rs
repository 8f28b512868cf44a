//! Tests of the depthwise kernels, shared with the interleaved ones (`depthwise_lanes`):
//! every depthwise layer shape of EfficientNet and odd ones, either kernel family by plane
//! width, against the plain reference.

use super::super::testing::{assert_close, random, random_mask};
use super::*;

pub(crate) fn geom(
    c: usize,
    k: usize,
    s: usize,
    pads: (usize, usize),
    h: usize,
    w: usize,
) -> ConvGeom {
    let (pt, pl) = pads;
    // TF "SAME"-like: output ceil(input / stride), extra padding bottom/right.
    let (oh, ow) = (h.div_ceil(s), w.div_ceil(s));
    ConvGeom {
        cin: c,
        cout: c,
        k,
        stride: s,
        pt,
        pl,
        h,
        w,
        oh,
        ow,
    }
}

/// Runs both kernels on `g` and checks them against the references.
pub(crate) fn check(g: &ConvGeom, seed: u64) {
    let (c, kk) = (g.cout, g.k * g.k);
    let images = 2;
    let (isz, osz) = (c * g.h * g.w, c * g.oh * g.ow);
    let weight = random(c * kk, seed);
    let weight_flipped: Vec<f32> = weight
        .chunks(kk)
        .flat_map(|w| w.iter().rev().copied())
        .collect();
    let bias = random(c, seed + 1);
    let layer = DepthwiseLayer {
        g,
        weight: &weight,
        weight_flipped: &weight_flipped,
        bias: &bias,
        act: Act::Relu6,
    };
    let x = random(images * isz, seed + 2)
        .iter()
        .map(|v| 8.0 * v)
        .collect::<Vec<_>>();
    let (mut y, mut m) = (vec![0.0; images * osz], vec![0; images * osz]);
    depthwise_forward(&layer, &x, &mut y, Some(&mut m), images);
    let dy = random(images * osz, seed + 3);
    let dx_mask = random_mask(images * isz, seed + 4);
    for (acc, with_dx_mask) in [(false, false), (false, true), (true, false)] {
        let dx0 = random(images * isz, seed + 5);
        let mut dx = dx0.clone();
        let dm = with_dx_mask.then_some(&dx_mask[..]);
        depthwise_backward(&layer, &dy, Some(&m), &mut dx, dm, images, acc);
        for n in 0..images {
            let (ix, ox) = (n * isz..(n + 1) * isz, n * osz..(n + 1) * osz);
            if !acc && !with_dx_mask {
                let (mut yr, mut mr) = (vec![0.0; osz], vec![0; osz]);
                reference::forward(&layer, &x[ix.clone()], &mut yr, &mut mr);
                assert_close(&y[ox.clone()], &yr, 1e-5);
                assert_eq!(&m[ox.clone()], &mr[..], "{g:?}");
            }
            let mut want = dx0[ix.clone()].to_vec();
            let dmi = dm.map(|d| &d[ix.clone()]);
            reference::backward(
                &layer,
                (&dy[ox.clone()], Some(&m[ox])),
                (&mut want, dmi),
                acc,
            );
            assert_close(&dx[ix], &want, 1e-5);
        }
    }
}

#[test]
fn planes_match_reference() {
    let mut seed = 0;
    for (c, k, s, h) in [
        (3, 3, 1, 20),
        (5, 3, 2, 35),
        (4, 5, 1, 18),
        (3, 5, 2, 34),
        (2, 7, 1, 17),
        (3, 3, 2, 40),
    ] {
        for pads in [((k - 1) / 2, (k - 1) / 2), (0, 0), (k - 1, (k - 1) / 2)] {
            let g = geom(c, k, s, pads, h, h + 3);
            assert!(!interleaved(&g));
            check(&g, seed);
            seed += 10;
        }
    }
}
