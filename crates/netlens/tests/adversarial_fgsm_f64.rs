//! FGSM against PyTorch, in float64: the targeted FGSM step netlens takes on chelsea towards
//! class 6 (stingray) is `x − ε·sign(∇ₓ CE(f(x), 6))` with PyTorch's gradient (fixture
//! `chelsea.ce_grad_6.npy`, computed in float64). Float64 so that no sign is flipped by
//! float32 rounding; kept in its own test binary because precision is global.

mod common;

use common::*;
use netlens::adversarial::{attack, Attack, AttackMethod, Goal};
use netlens::engine::{set_precision, Precision};

#[test]
fn targeted_fgsm_step_matches_pytorch_signs() {
    set_precision(Precision::F64);
    let net = model("efficientnet_lite0");
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
