//! Fooling images on real photos with EfficientNet-Lite0: the CS231n loop reaches the target
//! and the saved PNG reads back as the target; PGD never leaves its ε-ball once quantized;
//! transfer and robustness sweeps report what the saved images really do.

mod common;

use common::*;
use netlens::adversarial::pgd::{Norm, Pgd};
use netlens::adversarial::robustness::{robustness, Sweep};
use netlens::adversarial::transfer::transfer;
use netlens::adversarial::{attack, distance, Attack, AttackMethod, Cs231nFooling, Goal};
use netlens::batch::ImageBatch;
use netlens::classify::classify;
use netlens::gradients::{quantize_within, Constraint};
use netlens::imaging::{self, fit, output::save_png, Normalization};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LITE0: &str = "efficientnet_lite0";
const STINGRAY: usize = 6;
const PHOTOS: [&str; 5] = [
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "grace_hopper.jpg",
    "motorcycle_left.png",
];

fn inputs(names: &[&str], size: u32) -> Vec<image::RgbImage> {
    names
        .iter()
        .map(|n| fit(&imaging::load_rgb(&photo(n)).unwrap(), size).0)
        .collect()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("netlens-adv-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn cs231n_fools_five_photos_and_the_png_reads_back_as_the_target() {
    let net = model(LITE0);
    let imgs = inputs(&PHOTOS, 224);
    let a = Attack {
        method: AttackMethod::Cs231n(Cs231nFooling::default()),
        goal: Goal::Targets(vec![STINGRAY; imgs.len()]),
        batch: imgs.len(),
    };
    let fooled = attack(net, &imgs, &a, &mut |_, _| {}).unwrap();
    let mut back = Vec::new();
    for (name, f) in PHOTOS.iter().zip(&fooled) {
        eprintln!(
            "{name}: {} -> {} p={:.3} in {} steps, L∞ {} L2 {:.1}",
            f.original_class,
            f.final_class,
            f.final_prob,
            f.iterations,
            f.distance.linf,
            f.distance.l2
        );
        assert_ne!(f.original_class, STINGRAY, "{name} starts as the target");
        assert!(f.success, "{name}: not fooled within 100 iterations");
        assert!(f.iterations <= 100 && f.iterations > 0);
        assert_eq!(f.final_class, STINGRAY);
        assert_eq!(distance(&imgs[back.len()], &f.image), f.distance);
        let path = scratch(&format!("{}.fooling.png", name.split('.').next().unwrap()));
        save_png(&f.image, &path).unwrap();
        let read = imaging::load_rgb(&path).unwrap();
        assert_eq!(
            read.as_raw(),
            f.image.as_raw(),
            "{name}: PNG changed the pixels"
        );
        back.push(read);
    }
    // The files, classified afresh (a different batch), are the target.
    for (name, p) in PHOTOS.iter().zip(classify(net, &back, 1, 2)) {
        assert_eq!(
            p.class(),
            STINGRAY,
            "{name}: the saved PNG is {}",
            p.class()
        );
    }
}

#[test]
fn pgd_never_leaves_its_ball_after_quantization() {
    let net = model(LITE0);
    let imgs = inputs(&PHOTOS[..2], 224);
    let cases = [
        (Norm::Linf, 2.0, "L∞ 2"),
        // Not a whole number of levels: rounding to 8 bits would reach 3.
        (Norm::Linf, 2.5, "L∞ 2.5"),
        // Rounding each value to the nearest level could push the L2 norm past ε.
        (Norm::L2, 60.0, "L2 60"),
    ];
    for (norm, eps, what) in cases {
        let a = Attack {
            method: AttackMethod::Pgd(Pgd {
                epsilon: eps,
                steps: 3,
                step_size: None,
                norm,
                random_start: true,
                seed: 7,
                full_steps: false,
            }),
            goal: Goal::Untargeted,
            batch: 2,
        };
        for f in attack(net, &imgs, &a, &mut |_, _| {}).unwrap() {
            let d = f.distance;
            eprintln!(
                "PGD {what}: L∞ {} L2 {:.3} success {}",
                d.linf, d.l2, f.success
            );
            match norm {
                Norm::Linf => assert!(d.linf <= f64::from(eps), "{what}: L∞ {}", d.linf),
                Norm::L2 => assert!(d.l2 <= f64::from(eps) + 1e-9, "{what}: L2 {}", d.l2),
            }
            assert!(d.linf > 0.0, "{what}: the attack changed nothing");
        }
    }
}

#[test]
fn quantizing_keeps_random_points_of_the_ball_inside_it() {
    // No network: many random points of L∞ / L2 balls around a random 8-bit image, rounded
    // as they would be saved, must stay in the ball (measured on the 8-bit values).
    let norm = Normalization::LITE;
    let (h, w) = (16, 16);
    let shape = [1, 3, h, w];
    let mut rng = StdRng::seed_from_u64(3);
    let px: Vec<f32> = (0..3 * h * w)
        .map(|_| f32::from(rng.random_range(0u8..=255)))
        .collect();
    let plane = h * w;
    let center: Vec<f32> = px
        .iter()
        .enumerate()
        .map(|(j, &p)| norm.apply(j / plane, p))
        .collect();
    for trial in 0..200 {
        let l2 = trial % 2 == 1;
        let eps: f32 = if l2 {
            rng.random_range(1.0..40.0)
        } else {
            rng.random_range(0.5..6.0)
        };
        let mut d: Vec<f32> = (0..px.len())
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        if l2 {
            let n = d.iter().map(|v| v * v).sum::<f32>().sqrt();
            d.iter_mut().for_each(|v| *v *= eps / n);
        } else {
            d.iter_mut().for_each(|v| *v *= eps);
        }
        let theta: Vec<f32> = px
            .iter()
            .zip(&d)
            .enumerate()
            .map(|(j, (p, dv))| norm.apply(j / plane, (p + dv).clamp(0.0, 255.0)))
            .collect();
        let c = Constraint {
            pixel_box: Some(norm),
            linf: (!l2).then_some(eps),
            l2: l2.then_some(eps),
            center: Some(ImageBatch::new(center.clone(), shape).unwrap()),
            norm: Some(norm),
        };
        let theta = ImageBatch::new(theta, shape).unwrap();
        let q = quantize_within(&theta, &norm, &c);
        let saved: Vec<f32> = q
            .values()
            .iter()
            .enumerate()
            .map(|(j, &v)| norm.invert(j / plane, v))
            .collect();
        for s in &saved {
            assert!((s - s.round()).abs() < 1e-3 && (0.0..=255.0).contains(&s.round()));
        }
        let diff: Vec<f32> = saved.iter().zip(&px).map(|(s, p)| s.round() - p).collect();
        if l2 {
            let n = diff.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!(n <= eps + 1e-4, "trial {trial}: L2 {n} > {eps}");
        } else {
            let m = diff.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert!(m <= eps, "trial {trial}: L∞ {m} > {eps}");
        }
    }
}

#[test]
fn transfer_matrix_tests_the_saved_images_through_the_fit_pipeline() {
    let (m0, m1) = (model(LITE0), model("efficientnet_lite1"));
    let photos: Vec<_> = PHOTOS[..2]
        .iter()
        .map(|n| imaging::load_rgb(&photo(n)).unwrap())
        .collect();
    let pgd = AttackMethod::Pgd(Pgd {
        steps: 5,
        ..Pgd::linf(4.0)
    });
    let t = transfer(&[m0, m1], &photos, None, pgd, 2, &mut |_, _, _| {}).unwrap();
    eprintln!("PGD 4/255 untargeted transfer: {:?}", t.success);
    assert_eq!(t.models, vec![LITE0, "efficientnet_lite1"]);
    for i in 0..2 {
        // The diagonal is each crafting run's own verdict (the saved image fitted to its own
        // size is itself).
        let own = t.crafted[i].iter().filter(|f| f.success).count();
        assert_eq!(t.success[i][i], own);
        assert_eq!(t.crafted[i][0].image.width(), [224, 240][i]);
        for k in 0..2 {
            assert_eq!(t.predictions[i][i][k], t.crafted[i][k].final_class);
        }
    }
    // Untargeted PGD at 4/255 flips both photos on the model it was made for.
    assert_eq!(t.success[0][0], 2);
    assert_eq!(t.success[1][1], 2);
}

#[test]
fn noise_barely_matters_where_pgd_always_wins() {
    let net = model(LITE0);
    let imgs = inputs(&PHOTOS[..2], 224);
    let sweep = Sweep {
        sigmas: vec![2.0],
        draws: 2,
        epsilons: vec![4.0],
        steps: 5,
        seed: 1,
        batch: 4,
    };
    let c = robustness(net, &imgs, &sweep, &mut |_, _| {}).unwrap();
    eprintln!("noise {:?}\npgd {:?}", c.noise, c.pgd);
    assert_eq!(c.noise[0].count, 4);
    assert_eq!(
        c.noise[0].agreement, 1.0,
        "σ = 2 noise changed a prediction"
    );
    assert!(
        (c.noise[0].rms - 2.0).abs() < 0.3,
        "noise RMS {}",
        c.noise[0].rms
    );
    assert_eq!(
        c.pgd[0].agreement, 0.0,
        "PGD ε = 4 left a prediction intact"
    );
    assert!(c.pgd[0].linf <= 4.0);
    let plot = netlens::adversarial::plot::robustness_plot(&c).unwrap();
    let colours: std::collections::HashSet<_> = plot.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 20, "the plot is nearly blank");
}

// The float64 checks, once `adversarial_fgsm_f64.rs`: a binary of its own while precision was
// process-wide, now the same weights loaded a second time, in float64.
mod float64 {
    //! FGSM against PyTorch, in float64: the targeted FGSM step netlens takes on chelsea towards
    //! class 6 (stingray) is `x − ε·sign(∇ₓ CE(f(x), 6))` with PyTorch's gradient (fixture
    //! `chelsea.ce_grad_6.npy`, computed in float64). Float64 so that no sign is flipped by
    //! float32 rounding; the float64 model is loaded beside the float32 one the other tests use.

    use crate::common::*;
    use netlens::adversarial::{attack, Attack, AttackMethod, Goal};

    #[test]
    fn targeted_fgsm_step_matches_pytorch_signs() {
        let net = model_f64("efficientnet_lite0");
        let img = fixture_pixels("efficientnet_lite0", "chelsea");
        let g = read_f32(&fixture_dir("efficientnet_lite0").join("chelsea.ce_grad_6.npy"));
        let eps = 4.0f32;
        let a = Attack {
            method: AttackMethod::Fgsm { epsilon: eps },
            goal: Goal::Targets(vec![6]),
            batch: 1,
        };
        let f = attack(net, std::slice::from_ref(&img), &a, &mut |_, _| {})
            .unwrap()
            .remove(0);
        assert_eq!(f.iterations, 1);
        let (w, h) = img.dimensions();
        let plane = (w * h) as usize;
        let gmax = g.iter().fold(0f32, |m, v| m.max(v.abs()));
        let (mut compared, mut wrong, mut clamped_ok) = (0usize, 0usize, 0usize);
        for (i, (p0, p1)) in img.pixels().zip(f.image.pixels()).enumerate() {
            for c in 0..3 {
                let gv = g[c * plane + i];
                let (a0, a1) = (f32::from(p0.0[c]), f32::from(p1.0[c]));
                // PyTorch's FGSM: clamp(x − ε·sign(g), 0, 255).
                let want = (a0 - eps * gv.signum()).clamp(0.0, 255.0);
                if gv.abs() <= 1e-6 * gmax {
                    continue; // sign of a (near-)zero gradient is not meaningful
                }
                compared += 1;
                if a1 != want {
                    wrong += 1;
                } else if want != a0 - eps * gv.signum() {
                    clamped_ok += 1;
                }
            }
        }
        let total = 3 * plane;
        eprintln!(
            "FGSM ε={eps}: {compared}/{total} values compared, {wrong} differ, {clamped_ok} clamped; \
             final class {} p={:.3}",
            f.final_class, f.final_prob
        );
        assert!(
            compared as f64 > 0.99 * total as f64,
            "too few values compared: {compared}"
        );
        assert_eq!(wrong, 0, "{wrong} values differ from PyTorch's FGSM step");
        assert!((f.distance.linf - f64::from(eps)).abs() < 1e-9);
    }
}
