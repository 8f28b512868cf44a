//! Class-visualization pieces against PyTorch, with the engine in float64 (its own test binary:
//! precision is global).
//!
//! - The CS231n configuration of the shared loop replays `create_class_visualization` as the
//!   assignment writes it (roll the data, step, roll back, clamp, blur) from the same start
//!   with the same jitter offsets: `tools/reference/synthesis_cs231n_ref.py`. Six iterations:
//!   the loop amplifies rounding (a 1e-7 difference eventually flips a ReLU6 mask, then grows
//!   ~10x per step; PyTorch's float32 loop leaves its own float64 loop the same way), so longer
//!   runs cannot be compared pixel for pixel.
//! - The decorrelated Fourier parametrization equals Lucent's `fft_image` + `to_valid_rgb`
//!   (`torch.fft.irfftn`): `tools/reference/synthesis_fourier.py`.

mod common;

use burn::tensor::Tensor;
use common::*;
use ndarray::ArrayD;
use netlens::engine::{self, set_precision, Precision};
use netlens::gradients::{ascend, Parametrization, Transform};
use netlens::imaging::tensor::tensor_values;
use netlens::imaging::Normalization;
use netlens::synthesis::fourier::FourierImage;
use netlens::synthesis::objective::ScoreMinusL2;
use netlens::synthesis::{cs231n, Cs231nRecipe};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::cell::Cell;
use std::path::PathBuf;

fn dir() -> PathBuf {
    fixture_dir("synthesis")
}

/// A roll by prescribed offsets, one pair per call, in place of the random [`Roll`].
struct FixedRoll {
    offsets: Vec<(i64, i64)>,
    next: Cell<usize>,
}

impl Transform for FixedRoll {
    fn apply(&self, x: Tensor<4>, _rng: &mut StdRng) -> Tensor<4> {
        let (ox, oy) = self.offsets[self.next.get()];
        self.next.set(self.next.get() + 1);
        x.roll(&[ox, oy], &[3, 2])
    }
}

#[test]
fn cs231n_loop_matches_pytorch() {
    set_precision(Precision::F64);
    let net = model("efficientnet_lite0");
    let a: ArrayD<i64> = ndarray_npy::read_npy(dir().join("cs231n_lite0.offsets.npy")).unwrap();
    let offsets: Vec<(i64, i64)> = a.outer_iter().map(|r| (r[0], r[1])).collect();
    let want = read_f32(&dir().join("cs231n_lite0.final.npy"));
    let s = 224;
    let theta0: Vec<f32> = (0..3 * s * s)
        .map(|i| (1.8 * (0.618034 * i as f64).sin()) as f32)
        .collect();
    let recipe = Cs231nRecipe {
        iterations: offsets.len(),
        ..Cs231nRecipe::default()
    };
    let objective = ScoreMinusL2 {
        targets: vec![366],
        l2_reg: recipe.l2_reg,
    };
    let roll = FixedRoll {
        offsets,
        next: Cell::new(0),
    };
    let norm = net.spec().normalization;
    let ascent = cs231n::configure(&recipe, &norm, &objective, &roll);
    let mut rng = StdRng::seed_from_u64(0);
    let got = ascend(net, &ascent, theta0, [1, 3, s, s], &mut rng, &mut |_| true).unwrap();
    let err = rel_l2(&got.theta, &want);
    let max = got
        .theta
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!(
        "cs231n loop, {} iterations vs PyTorch float64: rel L2 {err:.2e}, max |diff| {max:.2e}",
        recipe.iterations
    );
    // Both keep the image in float32 between steps with a float64 network: what is left is
    // float32 rounding of the step and the blur (~1e-7 per step). Measured 2.1e-7.
    assert!(err < 2e-6, "image after the loop differs: rel L2 {err}");
}

#[test]
fn fourier_image_matches_lucent() {
    set_precision(Precision::F64);
    let norm = Normalization::LITE;
    for (h, w) in [(12usize, 16usize), (10, 13)] {
        let stem = format!("fourier_{h}x{w}");
        let spec: ArrayD<f64> =
            ndarray_npy::read_npy(dir().join(format!("{stem}.spectrum.npy"))).unwrap();
        let want: ArrayD<f64> =
            ndarray_npy::read_npy(dir().join(format!("{stem}.rgb.npy"))).unwrap();
        let k = w / 2 + 1;
        // [1, 3, H, K, 2] (real, imag) -> netlens' [1, 3, 2H, K] (real rows, then imag rows)
        let mut theta = vec![0f64; 3 * 2 * h * k];
        for c in 0..3 {
            for y in 0..h {
                for x in 0..k {
                    theta[(c * 2 * h + y) * k + x] = spec[[0, c, y, x, 0]];
                    theta[(c * 2 * h + h + y) * k + x] = spec[[0, c, y, x, 1]];
                }
            }
        }
        let param = FourierImage::new(1, h, w, 1.0, true, &norm);
        assert_eq!(param.shape(), [1, 3, 2 * h, k]);
        let img = tensor_values(param.image(engine::tensor_f64(theta, [1, 3, 2 * h, k])));
        let plane = h * w;
        let got: Vec<f32> = img
            .iter()
            .enumerate()
            .map(|(i, &v)| norm.invert(i / plane, v) / 255.0)
            .collect();
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("fourier {h}x{w} vs Lucent/torch.fft.irfftn: max |diff| {max:.2e}");
        assert!(max < 1e-6, "{h}x{w}: max |diff| {max}");
    }
}
