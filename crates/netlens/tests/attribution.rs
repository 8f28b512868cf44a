//! Guided Backprop, Guided Grad-CAM, Occlusion and RISE on real photos with Lite0's real
//! weights (float32 engine, fast path), against the Captum / PyTorch float64 fixtures of
//! `tools/reference/attribution_fixtures.py` (`tests/fixtures/attribution/`), each for the
//! photo's top-1 class. The float64 run of the same comparisons (reference interpreter) is
//! the `float64` module below. Tolerances are stated per test with the measured error.

mod common;

use common::*;
use netlens::batch::ImageBatch;
use netlens::saliency::{
    guided_class_gradients, Attribution, GuidedBackprop, GuidedGradCam, Map, Occlusion,
    OcclusionConfig, Rise, RiseConfig, RiseMasks, Run, Targets,
};

const MODEL: &str = "efficientnet_lite0";
const STEMS: [&str; 2] = ["chelsea", "coffee"];

fn attribute(method: &dyn Attribution, stems: &[&str], batch: usize) -> Vec<Map> {
    let net = model(MODEL);
    let imgs: Vec<_> = stems.iter().map(|s| fixture_pixels(MODEL, s)).collect();
    let x = ImageBatch::from_images(&imgs, &net.spec().normalization).unwrap();
    let t = Targets::PerImage(stems.iter().map(|s| attribution_class(s)).collect());
    let mut quiet = |_: usize| {};
    method
        .attribute(net, x.view(), &t, &mut Run::new(batch, &mut quiet))
        .unwrap()
}

/// The per-channel guided gradient against Captum's `GuidedBackprop` (ReLU6 hooked):
/// measured 2.7e-7 (PyTorch's own float32 result is 3e-7 from its float64 one: the guided
/// rule keeps only positive gradients, so a ReLU6 mask flipping near a kink moves little,
/// unlike the plain gradient's 1.7e-3). Tolerance 1e-4.
#[test]
fn guided_backprop_matches_captum() {
    let net = model(MODEL);
    for stem in STEMS {
        let img = fixture_pixels(MODEL, stem);
        let x =
            ImageBatch::from_images(std::slice::from_ref(&img), &net.spec().normalization).unwrap();
        let mut quiet = |_: usize| {};
        let (g, _) = guided_class_gradients(
            net,
            x.view(),
            &[attribution_class(stem)],
            &mut Run::new(1, &mut quiet),
        )
        .unwrap();
        let want = attribution_fixture(stem, "gbp");
        let err = rel_l2(g.values(), &want);
        let plain = rel_l2(
            &read_f32(&fixture_dir(MODEL).join(format!("{stem}.grad.npy"))),
            &want,
        );
        eprintln!("{stem}: guided gradient rel L2 {err:.2e} (plain gradient: {plain:.2})");
        assert!(err < 1e-4, "{stem}: {err}");
        // The fixture is not the plain gradient: the rule changed something.
        assert!(
            plain > 0.5,
            "{stem}: guided and plain gradients agree ({plain})"
        );
    }
    // The map is max_c |g_c| of that gradient.
    let maps = attribute(&GuidedBackprop, &STEMS, 2);
    for (m, stem) in maps.iter().zip(STEMS) {
        let g = attribution_fixture(stem, "gbp");
        let want: Vec<f32> = (0..224 * 224)
            .map(|i| {
                (0..3)
                    .map(|c| g[c * 224 * 224 + i].abs())
                    .fold(0.0, f32::max)
            })
            .collect();
        assert!(rel_l2(&m.values, &want) < 1e-4, "{stem} map");
    }
}

/// Captum's `GuidedGradCam` on the head activation with bilinear upsampling, reduced to
/// max_c |·|: measured 3–5e-7, tolerance 1e-4 (as Guided Backprop).
#[test]
fn guided_grad_cam_matches_captum() {
    let maps = attribute(&GuidedGradCam::default(), &STEMS, 2);
    for (m, stem) in maps.iter().zip(STEMS) {
        let err = rel_l2(&m.values, &attribution_fixture(stem, "guided_gradcam"));
        eprintln!("{stem}: Guided Grad-CAM rel L2 {err:.2e}");
        assert!(err < 1e-4, "{stem}: {err}");
    }
}

/// Captum's `Occlusion` with netlens's defaults (window 32, stride 16, fill 0). The map is
/// a mean of logit differences, each within float32 rounding of PyTorch's float64 ones;
/// measured 8e-6 on chelsea, tolerance 1e-4.
#[test]
fn occlusion_matches_captum() {
    let occ = Occlusion::new(OcclusionConfig::default()).unwrap();
    let maps = attribute(&occ, &STEMS, 16);
    for (m, stem) in maps.iter().zip(STEMS) {
        let err = rel_l2(&m.values, &attribution_fixture(stem, "occlusion"));
        eprintln!("{stem}: occlusion rel L2 {err:.2e}");
        assert!(err < 1e-4, "{stem}: {err}");
        assert!(m.signed);
    }
}

/// RISE on the reference's 64 masks (NumPy-drawn grids and shifts): upsampling, cropping,
/// masking, softmax and the weighted sum against PyTorch in float64: measured 9.7e-7,
/// tolerance 1e-4.
#[test]
fn rise_on_given_masks_matches_pytorch() {
    let grids = read_f32(&fixture_dir("attribution").join("chelsea.rise_grids.npy"));
    let (shifts, _) = {
        let a: ndarray::ArrayD<i64> =
            ndarray_npy::read_npy(fixture_dir("attribution").join("chelsea.rise_shifts.npy"))
                .unwrap();
        let v: Vec<i64> = a.iter().copied().collect();
        (v, a.shape().to_vec())
    };
    let masks = RiseMasks {
        grids,
        cell: 7,
        shifts: shifts
            .chunks(2)
            .map(|s| [s[0] as usize, s[1] as usize])
            .collect(),
        cell_size: [32, 32],
    };
    assert_eq!(masks.len(), 64);
    let rise = Rise::with_masks(masks, 0.5).unwrap();
    let m = attribute(&rise, &["chelsea"], 16).remove(0);
    let err = rel_l2(&m.values, &attribution_fixture("chelsea", "rise"));
    eprintln!("chelsea: RISE (64 given masks) rel L2 {err:.2e}");
    assert!(err < 1e-4, "{err}");
}

/// RISE's own masks: the same seed gives the same bytes whatever the batch size, another seed
/// other masks; each mask is 0/1 on the grid, kept with probability about p.
#[test]
fn rise_is_seeded_and_batch_size_free() {
    let cfg = RiseConfig {
        masks: 24,
        ..RiseConfig::default()
    };
    let a = attribute(&Rise::new(cfg.clone(), 5).unwrap(), &STEMS, 1);
    let b = attribute(&Rise::new(cfg.clone(), 5).unwrap(), &STEMS, 7);
    assert_eq!(a, b, "batch size changed the maps");
    let c = attribute(&Rise::new(cfg, 6).unwrap(), &STEMS, 7);
    assert_ne!(
        a[0].values, c[0].values,
        "the seed did not change the masks"
    );
    let big = Rise::new(
        RiseConfig {
            masks: 2000,
            ..RiseConfig::default()
        },
        0,
    )
    .unwrap()
    .masks(224, 224);
    let kept = big.grids.iter().sum::<f32>() / big.grids.len() as f32;
    assert!((kept - 0.5).abs() < 0.01, "share of kept cells {kept}");
    assert!(big.shifts.iter().all(|s| s[0] < 32 && s[1] < 32));
    let m = big.mask(0, 224, 224);
    assert!(m.iter().all(|&v| (0.0..=1.0).contains(&v)) && m.len() == 224 * 224);
}

/// Occlusion's arithmetic on a window that covers the whole input: one position, every
/// pixel's attribution the score drop of the fully grey image.
#[test]
fn occlusion_of_the_whole_image_is_the_score_drop() {
    let net = model(MODEL);
    let img = fixture_pixels(MODEL, "chelsea");
    let x = ImageBatch::from_images(std::slice::from_ref(&img), &net.spec().normalization).unwrap();
    let grey = net
        .precision()
        .tensor(vec![0.0; 3 * 224 * 224], [1, 3, 224, 224]);
    let t = attribution_class("chelsea");
    let l = netlens::gradients::logits(net, x.to_tensor(netlens::engine::Precision::F32));
    let g = netlens::gradients::logits(net, grey);
    let drop = l[t] - g[t];
    let occ = Occlusion::new(OcclusionConfig {
        window: 224,
        stride: 1,
        fill: 0.0,
    })
    .unwrap();
    let mut quiet = |_: usize| {};
    let m = occ
        .attribute(
            net,
            x.view(),
            &Targets::All(t),
            &mut Run::new(4, &mut quiet),
        )
        .unwrap()
        .remove(0);
    assert!(m
        .values
        .iter()
        .all(|&v| (v - drop).abs() < 1e-4 * drop.abs()));
    let too_big = Occlusion::new(OcclusionConfig {
        window: 225,
        ..OcclusionConfig::default()
    })
    .unwrap()
    .attribute(
        net,
        x.view(),
        &Targets::All(t),
        &mut Run::new(4, &mut quiet),
    );
    assert!(too_big.unwrap_err().to_string().contains("--window"));
}

// The float64 checks, once `attribution_f64.rs`: a binary of its own while precision was
// process-wide, now the same weights loaded a second time, in float64.
mod float64 {
    //! Guided Backprop and Guided Grad-CAM on a model loaded in float64, where the fast path
    //! is off and the reference interpreter runs every
    //! ReLU6 as the guided operation (`netlens::engine::guided_relu`): against Captum in float64
    //! (`tools/reference/attribution_fixtures.py`), EfficientNet-Lite0 with its real weights,
    //! each photo's top-1 class. Tolerance: relative L2 below 1e-6 (float32 storage of the
    //! fixtures and of the input is all that separates them).

    use crate::common::*;
    use netlens::batch::ImageBatch;
    use netlens::saliency::{Attribution, GuidedBackprop, GuidedGradCam, Map, Run, Targets};

    const MODEL: &str = "efficientnet_lite0";
    const STEMS: [&str; 2] = ["chelsea", "coffee"];
    const TOL: f64 = 1e-6;

    fn maps(method: &dyn Attribution) -> Vec<Map> {
        let net = model_f64(MODEL);
        let imgs: Vec<_> = STEMS.iter().map(|s| fixture_pixels(MODEL, s)).collect();
        let x = ImageBatch::from_images(&imgs, &net.spec().normalization).unwrap();
        let mut quiet = |_: usize| {};
        method
            .attribute(
                net,
                x.view(),
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
}
