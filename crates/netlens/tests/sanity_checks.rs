//! Adebayo et al. 2018 ("Sanity Checks for Saliency Maps"), cascading model-parameter
//! randomization on real photos with Lite0's real weights: the vanilla gradient's map loses
//! its rank correlation with the trained network's map as the cascade goes down, while Guided
//! Backprop's stays high as long as the lower layers are intact (it behaves like an edge
//! detector of the input, the paper's finding). The PyTorch run (Lite0, four photos):
//! with the top half of the learned layers re-drawn, ρ 0.65–0.83 for Guided Backprop against
//! 0.29–0.37 for the gradient; after the full cascade 0.02–0.18 against −0.22–0.03.
//!
//! Spearman rank correlation of absolute maps (`netlens::metrics::randomization`), re-drawing
//! with seed 0, each photo's top-1 class of the trained network.

mod common;

use common::*;
use netlens::batch::ImageBatch;
use netlens::metrics::randomization::{layers, open_graph_model, randomized_model, spearman};
use netlens::models::{GraphModel, Preprocessing};
use netlens::saliency::{Attribution, GuidedBackprop, Run, Targets, Vanilla};
use netlens::Classifier;

const MODEL: &str = "efficientnet_lite0";

/// ρ between the method's map on the trained network and on `other`, per photo.
fn rho(net: &GraphModel, other: &GraphModel, m: &dyn Attribution, stem: &str) -> f64 {
    let img = fixture_pixels(MODEL, stem);
    let x = ImageBatch::from_images(std::slice::from_ref(&img), &net.spec().normalization).unwrap();
    let t =
        Targets::All(netlens::classify::classify(net, std::slice::from_ref(&img), 1, 1)[0].class());
    let mut quiet = |_: usize| {};
    let mut run = Run::new(1, &mut quiet);
    let a = m.attribute(net, x.view(), &t, &mut run).unwrap().remove(0);
    let b = m
        .attribute(other, x.view(), &t, &mut run)
        .unwrap()
        .remove(0);
    spearman(&a.magnitude(), &b.magnitude()).unwrap()
}

#[test]
fn guided_backprop_survives_the_top_half_of_the_cascade_and_the_gradient_does_not() {
    let net = open_graph_model(MODEL, None, &Preprocessing::default(), &mut |_| {}).unwrap();
    let spec = net.spec().clone();
    let half = randomized_model(&net, &spec, layers(net.graph()).len() / 2, 0).unwrap();
    let full = randomized_model(&net, &spec, usize::MAX, 0).unwrap();
    let stems = [
        "chelsea",
        "coffee",
        "rocket",
        "grace_hopper",
        "motorcycle_left",
    ];
    let mut sums = [0.0f64; 4];
    for stem in stems {
        let r = [
            rho(&net, &half, &GuidedBackprop, stem),
            rho(&net, &half, &Vanilla, stem),
            rho(&net, &full, &GuidedBackprop, stem),
            rho(&net, &full, &Vanilla, stem),
        ];
        eprintln!(
            "{stem}: top half re-drawn: guided backprop ρ {:.3}, gradient ρ {:.3}; full \
             cascade: guided backprop ρ {:.3}, gradient ρ {:.3}",
            r[0], r[1], r[2], r[3]
        );
        // On every photo Guided Backprop keeps more of its map than the gradient.
        assert!(
            r[0] > r[1],
            "{stem}: guided backprop {} ≤ gradient {}",
            r[0],
            r[1]
        );
        sums.iter_mut().zip(r).for_each(|(s, v)| *s += v);
    }
    let [g_half, v_half, g_full, v_full] = sums.map(|s| s / stems.len() as f64);
    eprintln!(
        "mean: top half: guided backprop {g_half:.3}, gradient {v_half:.3}; full: guided \
         backprop {g_full:.3}, gradient {v_full:.3}"
    );
    assert!(
        g_half > 0.5,
        "guided backprop lost its map at half: {g_half}"
    );
    assert!(
        g_half > v_half + 0.2,
        "guided backprop ({g_half}) should stay well above the gradient ({v_half})"
    );
    assert!(
        v_full.abs() < 0.25,
        "gradient ρ after the full cascade {v_full}"
    );
    assert!(
        g_full < g_half - 0.2,
        "guided backprop ρ should fall with the full cascade"
    );
}
