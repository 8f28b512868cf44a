//! Guided Backprop and Guided Grad-CAM with the engine in float64 (its own test binary:
//! precision is global), where the fast path is off and the reference interpreter runs every
//! ReLU6 as the guided operation (`netlens::engine::guided_relu`): against Captum in float64
//! (`tools/reference/attribution_fixtures.py`), EfficientNet-Lite0 with its real weights,
//! each photo's top-1 class. Tolerance: relative L2 below 1e-6 (float32 storage of the
//! fixtures and of the input is all that separates them).

mod common;

use common::*;
use netlens::engine::{set_precision, Precision};
use netlens::imaging::images_to_tensor;
use netlens::saliency::{Attribution, GuidedBackprop, GuidedGradCam, Map, Run, Targets};

const MODEL: &str = "efficientnet_lite0";
const STEMS: [&str; 2] = ["chelsea", "coffee"];
const TOL: f64 = 1e-6;

fn maps(method: &dyn Attribution) -> Vec<Map> {
    set_precision(Precision::F64);
    let net = model(MODEL);
    let imgs: Vec<_> = STEMS.iter().map(|s| fixture_pixels(MODEL, s)).collect();
    let x = images_to_tensor(&imgs, &net.spec().normalization);
    let mut quiet = |_: usize| {};
    method
        .attribute(
            net,
            &x,
            &Targets::PerImage(STEMS.map(attribution_class).to_vec()),
            &mut Run::new(2, &mut quiet),
        )
        .unwrap()
}

#[test]
fn guided_backprop_and_guided_grad_cam_match_captum_in_float64() {
    for (m, stem) in maps(&GuidedBackprop).iter().zip(STEMS) {
        let g = attribution_fixture(stem, "gbp");
        let want: Vec<f32> = (0..224 * 224)
            .map(|i| {
                (0..3)
                    .map(|c| g[c * 224 * 224 + i].abs())
                    .fold(0.0, f32::max)
            })
            .collect();
        let err = rel_l2(&m.values, &want);
        eprintln!("{stem}: float64 Guided Backprop map rel L2 {err:.2e}");
        assert!(err < TOL, "{stem}: {err}");
    }
    for (m, stem) in maps(&GuidedGradCam::default()).iter().zip(STEMS) {
        let err = rel_l2(&m.values, &attribution_fixture(stem, "guided_gradcam"));
        eprintln!("{stem}: float64 Guided Grad-CAM rel L2 {err:.2e}");
        assert!(err < TOL, "{stem}: {err}");
    }
}
