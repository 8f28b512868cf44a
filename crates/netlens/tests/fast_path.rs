//! The fast path against the plain burn path it replaces.
//!
//! Layer by layer on random weights and inputs of awkward shapes (odd sizes, stride 2, TF
//! "SAME" and explicit padding, 1×1 / 3×3 / 5×5 / depthwise / strided dense convolutions,
//! max-pool with ceil mode, residual adds, concatenation, dense layers, smooth activations
//! and squeeze-excitation), and on the real
//! EfficientNet-Lite0: logits and input gradients agree to 1e-5 relative (L2), except where a
//! float32 rounding difference moves a pre-activation across a ReLU6 kink: the real-network
//! test allows 5e-3 for its input gradients (seen: 6e-7 without a flip, up to 1.2e-3 with
//! one). The PyTorch fixtures of `parity*.rs`,
//! `saliency.rs`, `adversarial.rs` and `synthesis.rs` run with the fast path on (the
//! default), so they check it against PyTorch too.

mod common;

use burn::tensor::activation::relu;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::Tensor;
use common::rel_l2;
use netlens::engine::tensor_values;
use netlens::engine::{self, LoadOptions, Precision::F32};
use netlens::fast::kernels::Act;
use netlens::fast::{ConvParams, FastNet, Graph, LinearParams, Pad};
use netlens::gradients::{input_gradient, ClassScore};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

fn random(rng: &mut rand::rngs::StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

#[derive(Clone, Copy)]
enum L {
    /// cout, k, stride, groups (0 = depthwise), padding (None = SAME), act
    Conv(usize, usize, usize, usize, Option<usize>, Act),
    Pool(usize, usize, bool),
    /// A residual block: 1×1 expand ×4 (ReLU6), depthwise 3×3, 1×1 project, add.
    Residual,
    /// A Fire module: squeeze to c/4 (ReLU), expand 1×1 and 3×3 to c/2 each, concat.
    Fire,
    /// Squeeze-excitation: global average pool, 1×1 to c/4 (first act), 1×1 back to c
    /// (the gate's act), `x · gate` per channel.
    SqueezeExcite(Act, Act),
}

struct Built {
    graph: Graph,
    plain: Box<dyn Fn(Tensor<4>) -> Tensor<2>>,
}

fn burn_conv(x: Tensor<4>, p: &ConvParams) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let pad = |len: usize, axis: usize| match p.pad {
        Pad::Explicit(q) => (q, q),
        Pad::Asym(a) => (a[axis], a[axis + 2]),
        Pad::Same => {
            let out = len.div_ceil(p.stride);
            let total = ((out - 1) * p.stride + p.k).saturating_sub(len);
            (total / 2, total - total / 2)
        }
    };
    let wt = F32.tensor(p.weight.clone(), [p.cout, p.cin / p.groups, p.k, p.k]);
    let b = F32.tensor(p.bias.clone(), [p.cout]);
    let opts =
        ConvOptions::new_with_padding([p.stride; 2], [pad(h, 0), pad(w, 1)], [1, 1], p.groups);
    conv2d(x, wt, Some(b), opts)
}

fn burn_act(x: Tensor<4>, a: Act) -> Tensor<4> {
    use burn::tensor::activation::{hard_sigmoid, hard_swish, sigmoid, silu};
    match a {
        Act::None => x,
        Act::Relu => relu(x),
        Act::Relu6 => relu(x.clone()) - relu(x - 6.0),
        Act::Sigmoid => sigmoid(x),
        Act::Silu => silu(x),
        Act::HardSigmoid => hard_sigmoid(x, 1.0 / 6.0, 0.5),
        Act::HardSwish => hard_swish(x),
    }
}

/// Builds the same random network as a fast graph and as plain burn operations, ending in a
/// global average pool, a hidden dense layer with ReLU, and a dense layer to `classes`.
fn build(layers: &[L], cin: usize, classes: usize, seed: u64) -> Built {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut g = Graph::new();
    type F = Box<dyn Fn(Tensor<4>) -> Tensor<4>>;
    let mut steps: Vec<F> = Vec::new();
    let mut h = 0;
    let mut c = cin;
    let conv = |rng: &mut rand::rngs::StdRng,
                g: &mut Graph,
                x,
                cin: usize,
                cout,
                k,
                stride,
                groups: usize,
                pad,
                act| {
        let groups = if groups == 0 { cin } else { groups };
        let fan = (cin / groups) * k * k;
        let p = ConvParams {
            weight: random(rng, cout * fan, (3.0 / fan as f32).sqrt() * 1.5),
            bias: random(rng, cout, 0.5),
            cin,
            cout,
            k,
            stride,
            groups,
            pad,
        };
        let v = g.conv(x, p.clone(), act).unwrap();
        let f: F = Box::new(move |t| burn_act(burn_conv(t, &p), act));
        (v, f)
    };
    for l in layers {
        match *l {
            L::Conv(cout, k, s, groups, pad, act) => {
                let pad = pad.map_or(Pad::Same, Pad::Explicit);
                let (v, f) = conv(
                    &mut rng,
                    &mut g,
                    h,
                    c,
                    if groups == 0 { c } else { cout },
                    k,
                    s,
                    groups,
                    pad,
                    act,
                );
                steps.push(f);
                h = v;
                c = if groups == 0 { c } else { cout };
            }
            L::Pool(k, s, ceil) => {
                h = g.max_pool(h, k, s, 0, ceil);
                steps.push(Box::new(move |t| {
                    max_pool2d(
                        t,
                        MaxPoolOptions::new([k; 2])
                            .with_stride([s; 2])
                            .with_ceil_mode(ceil),
                    )
                }));
            }
            L::Residual => {
                let x = h;
                let (e, fe) = conv(
                    &mut rng,
                    &mut g,
                    x,
                    c,
                    4 * c,
                    1,
                    1,
                    1,
                    Pad::Same,
                    Act::Relu6,
                );
                let (d, fd) = conv(
                    &mut rng,
                    &mut g,
                    e,
                    4 * c,
                    4 * c,
                    3,
                    1,
                    0,
                    Pad::Same,
                    Act::Relu6,
                );
                let (p, fp) = conv(&mut rng, &mut g, d, 4 * c, c, 1, 1, 1, Pad::Same, Act::None);
                h = g.add(p, x);
                steps.push(Box::new(move |t| fp(fd(fe(t.clone()))) + t));
            }
            L::Fire => {
                let (s, fs) = conv(
                    &mut rng,
                    &mut g,
                    h,
                    c,
                    c / 4,
                    1,
                    1,
                    1,
                    Pad::Explicit(0),
                    Act::Relu,
                );
                let (a, fa) = conv(
                    &mut rng,
                    &mut g,
                    s,
                    c / 4,
                    c / 2,
                    1,
                    1,
                    1,
                    Pad::Explicit(0),
                    Act::Relu,
                );
                let (b, fb) = conv(
                    &mut rng,
                    &mut g,
                    s,
                    c / 4,
                    c / 2,
                    3,
                    1,
                    1,
                    Pad::Explicit(1),
                    Act::Relu,
                );
                h = g.concat(vec![a, b]);
                steps.push(Box::new(move |t| {
                    let s = fs(t);
                    Tensor::cat(vec![fa(s.clone()), fb(s)], 1)
                }));
                c = c / 2 * 2;
            }
            L::SqueezeExcite(inner, gate) => {
                let x = h;
                let p = g.global_avg(x);
                let q = (c / 4).max(1);
                let one = Pad::Explicit(0);
                let (a, fa) = conv(&mut rng, &mut g, p, c, q, 1, 1, 1, one, inner);
                let (b, fb) = conv(&mut rng, &mut g, a, q, c, 1, 1, 1, one, gate);
                h = g.scale(x, b);
                steps.push(Box::new(move |t| {
                    let s = fb(fa(t.clone().mean_dim(2).mean_dim(3)));
                    t * s
                }));
            }
        }
    }
    let h = g.global_avg(h);
    const HIDDEN: usize = 37;
    let w1 = random(&mut rng, HIDDEN * c, 1.0);
    let b1 = random(&mut rng, HIDDEN, 0.3);
    let dense = |weight: &[f32], bias: &[f32], inputs, outputs| LinearParams {
        weight: weight.to_vec(),
        bias: bias.to_vec(),
        inputs,
        outputs,
        spatial: None,
    };
    let h = g.linear(h, dense(&w1, &b1, c, HIDDEN), Act::Relu).unwrap();
    let w = random(&mut rng, classes * HIDDEN, 1.0);
    let b = random(&mut rng, classes, 0.1);
    g.linear(h, dense(&w, &b, HIDDEN, classes), Act::None)
        .unwrap();
    let w1t: Tensor<2> = F32.tensor(w1, [HIDDEN, c]).transpose();
    let b1t: Tensor<1> = F32.tensor(b1, [HIDDEN]);
    let wt: Tensor<2> = F32.tensor(w, [classes, HIDDEN]).transpose();
    let bt: Tensor<1> = F32.tensor(b, [classes]);
    let plain = Box::new(move |x: Tensor<4>| {
        let mut t = x;
        for s in &steps {
            t = s(t);
        }
        let [n, c, _, _] = t.dims();
        let pooled: Tensor<2> = t.mean_dim(3).mean_dim(2).reshape([n, c]);
        let hidden = relu(pooled.matmul(w1t.clone()) + b1t.clone().unsqueeze::<2>());
        hidden.matmul(wt.clone()) + bt.clone().unsqueeze::<2>()
    });
    Built { graph: g, plain }
}

/// (logits, input gradient of Σ r·logits) through the fast graph and through burn.
/// Logits and input gradient of one run.
type Run = (Vec<f32>, Vec<f32>);

fn both(b: Built, shape: [usize; 4], seed: u64) -> (Run, Run) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x = random(&mut rng, shape.iter().product(), 2.0);
    let net = Arc::new(FastNet::new(b.graph));
    let classes = net.output_size(shape).unwrap();
    let r = random(&mut rng, shape[0] * classes, 1.0);
    let run = |f: &dyn Fn(Tensor<4>) -> Tensor<2>| {
        let xt = F32.tensor(x.clone(), shape).require_grad();
        let y = f(xt.clone());
        let rt: Tensor<2> = F32.tensor(r.clone(), [shape[0], classes]);
        let grads = (y.clone() * rt).sum().backward();
        (tensor_values(y), tensor_values(xt.grad(&grads).unwrap()))
    };
    let fast =
        run(&|t| engine::forward_fast_or(Some(&net), t, |_| panic!("fast path refused the shape")));
    let plain = run(&*b.plain);
    (fast, plain)
}

fn check(name: &str, layers: &[L], cin: usize, shapes: &[[usize; 4]]) {
    for (i, &shape) in shapes.iter().enumerate() {
        assert_eq!(shape[1], cin);
        let b = build(layers, cin, 7, 11 + i as u64);
        let ((fy, fg), (py, pg)) = both(b, shape, 100 + i as u64);
        let (ey, eg) = (rel_l2(&fy, &py), rel_l2(&fg, &pg));
        eprintln!("{name} {shape:?}: logits {ey:.1e}, input gradient {eg:.1e}");
        assert!(ey < 1e-5, "{name} {shape:?}: logits differ by {ey:.2e}");
        assert!(
            eg < 1e-5,
            "{name} {shape:?}: input gradients differ by {eg:.2e}"
        );
    }
}

const ODD: &[[usize; 4]] = &[[1, 3, 13, 17], [2, 3, 16, 16], [3, 3, 9, 12], [1, 3, 31, 8]];

#[test]
fn dense_convolutions() {
    for (k, s, pad) in [
        (1, 1, Some(0)),
        (3, 1, Some(1)),
        (3, 2, None),
        (3, 2, Some(0)),
        (5, 1, None),
        (3, 1, Some(0)),
        (5, 2, Some(2)),
        (1, 2, None),
        // Padding as wide as the kernel: the stride-1 backward falls back to col2im.
        (1, 1, Some(1)),
        (3, 1, Some(3)),
    ] {
        check(
            &format!("conv k{k} s{s} pad {pad:?}"),
            &[
                L::Conv(8, k, s, 1, pad, Act::Relu6),
                L::Conv(6, k, s.min(1), 1, pad, Act::Relu),
            ],
            3,
            ODD,
        );
    }
}

#[test]
fn depthwise_convolutions() {
    for (k, s, pad) in [
        (3, 1, None),
        (3, 2, None),
        (5, 1, None),
        (5, 2, None),
        (3, 1, Some(1)),
        (3, 2, Some(1)),
        (5, 2, Some(2)),
        (3, 2, Some(0)),
    ] {
        check(
            &format!("depthwise k{k} s{s} pad {pad:?}"),
            &[
                L::Conv(8, 1, 1, 1, None, Act::Relu6),
                L::Conv(0, k, s, 0, pad, Act::Relu6),
                L::Conv(5, 1, 1, 1, None, Act::None),
            ],
            3,
            ODD,
        );
    }
    // Small planes take channel-interleaved kernels in groups of 8 channels: channel counts
    // that leave a partial group, on planes small enough for them.
    for (c, k, s, pad) in [(12, 3, 1, None), (20, 5, 2, None), (13, 3, 2, Some(1))] {
        check(
            &format!("depthwise {c} channels k{k} s{s} pad {pad:?}"),
            &[
                L::Conv(c, 1, 1, 1, None, Act::Relu6),
                L::Conv(0, k, s, 0, pad, Act::Relu6),
                L::Conv(5, 1, 1, 1, None, Act::None),
            ],
            3,
            &[[1, 3, 7, 7], [2, 3, 14, 11], [1, 3, 5, 16]],
        );
    }
}

#[test]
fn smooth_activations_and_squeeze_excitation() {
    // Every smooth activation (its derivative saved as floats) after a strided dense 3×3,
    // a 1×1, a depthwise layer on whole planes and on channel-interleaved small planes
    // (13 channels: a partial group of 8), and in squeeze-excitation blocks with either
    // gate; the ReLU family stays beside them, so both kinds of saved state meet.
    for (act, gate) in [
        (Act::HardSwish, Act::HardSigmoid),
        (Act::Silu, Act::Sigmoid),
        (Act::Sigmoid, Act::HardSigmoid),
        (Act::HardSigmoid, Act::Sigmoid),
    ] {
        check(
            &format!("{act:?} with a {gate:?} gate"),
            &[
                L::Conv(13, 3, 2, 1, None, act),
                L::Conv(13, 1, 1, 1, None, act),
                L::Conv(0, 3, 1, 0, Some(1), act),
                L::SqueezeExcite(Act::Relu, gate),
                L::Conv(11, 1, 1, 1, None, Act::Relu6),
                L::Conv(0, 5, 2, 0, None, act),
                L::SqueezeExcite(act, gate),
                L::Conv(7, 1, 1, 1, None, act),
            ],
            3,
            ODD,
        );
    }
}

#[test]
fn blocks_pools_and_concatenation() {
    check(
        "residual",
        &[
            L::Conv(8, 3, 2, 1, None, Act::Relu6),
            L::Residual,
            L::Residual,
        ],
        3,
        ODD,
    );
    check(
        "fire + ceil pool",
        &[
            L::Conv(16, 3, 2, 1, Some(0), Act::Relu),
            L::Pool(3, 2, true),
            L::Fire,
            L::Fire,
            L::Pool(3, 2, true),
        ],
        3,
        &[[1, 3, 33, 29], [2, 3, 24, 24], [1, 3, 19, 40]],
    );
    check(
        "vgg-like deep",
        &[
            L::Conv(8, 3, 1, 1, Some(1), Act::Relu),
            L::Conv(8, 3, 1, 1, Some(1), Act::Relu),
            L::Pool(2, 2, false),
            L::Conv(16, 3, 1, 1, Some(1), Act::Relu),
            L::Conv(16, 3, 1, 1, Some(1), Act::Relu),
            L::Pool(2, 2, false),
            L::Conv(32, 3, 1, 1, Some(1), Act::Relu),
            L::Pool(2, 2, false),
        ],
        3,
        &[[1, 3, 64, 64], [1, 3, 224, 224], [2, 3, 96, 80]],
    );
    check(
        "vgg-like",
        &[
            L::Conv(8, 3, 1, 1, Some(1), Act::Relu),
            L::Pool(2, 2, false),
            L::Conv(12, 3, 1, 1, Some(1), Act::Relu),
            L::Pool(2, 2, false),
        ],
        3,
        ODD,
    );
}

/// 3×3 stride-1 layers wide enough for Winograd F(4,3) (≥ 32 input channels, ≥ 16 output
/// tiles per image), forward and backward-to-input (the backward is the flipped kernel's
/// Winograd), with odd planes (partial tiles), paddings 1, 0 and 2, ReLU and ReLU6, batches
/// 1–3: the fast path against the plain one at the same 1e-5 as every other layer. The
/// 32 → 48 and 48 → 40 layers run by Winograd both ways; the 3 → 32 stem stays on im2col.
#[test]
fn winograd_convolutions() {
    check(
        "winograd",
        &[
            L::Conv(32, 3, 1, 1, Some(1), Act::Relu),
            L::Conv(48, 3, 1, 1, Some(1), Act::Relu6),
            L::Conv(40, 3, 1, 1, Some(0), Act::Relu),
            L::Conv(36, 3, 1, 1, Some(2), Act::None),
        ],
        3,
        &[[1, 3, 23, 21], [3, 3, 17, 30], [2, 3, 32, 32]],
    );
}

/// The backward passes that run by F(4,3) (`winograd::Tiling::ByPlane`): a wide layer (160
/// → 144, over 256 channels) on planes of at least 32 4×4 tiles, and a narrow one (48 → 160)
/// on a plane whose blocks hold 125 tiles (113×97), with odd planes and partial tiles; the
/// forward passes stay on F(2,3). The fast path against the plain one at 1e-5, as above.
#[test]
fn winograd_f43_backward() {
    check(
        "winograd F(4,3) backward",
        &[
            L::Conv(48, 3, 1, 1, Some(1), Act::Relu),
            L::Conv(160, 3, 1, 1, Some(1), Act::Relu),
            L::Conv(144, 3, 1, 1, Some(1), Act::Relu6),
            L::Conv(40, 3, 1, 1, Some(0), Act::Relu),
        ],
        3,
        &[[1, 3, 23, 25], [2, 3, 21, 22], [1, 3, 113, 97]],
    );
}

/// Lite0 with its real weights on random inputs: logits to 1e-5; the input gradient to
/// 1e-5 except for ReLU6-kink flips (pre-activations within float32 rounding of 0 or 6),
/// which move it by at most 1e-3 here.
#[test]
fn lite0_fast_matches_plain() {
    // The same weights loaded twice: on the fast path and on the plain burn path.
    let load = |fast: bool| {
        let spec = netlens::models::spec("efficientnet_lite0").unwrap();
        let options = LoadOptions::with_fast_path(fast);
        netlens::models::load_with(spec, None, options, &mut |_| {}).unwrap()
    };
    let (fast_model, plain_model) = (load(true), load(false));
    assert!(fast_model.fast_path_on() && !plain_model.fast_path_on());
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for shape in [[1, 3, 224, 224], [2, 3, 224, 224], [1, 3, 161, 199]] {
        let x = random(&mut rng, shape.iter().product(), 2.0);
        let obj = ClassScore {
            targets: (0..shape[0]).map(|i| 366 + i).collect(),
        };
        let run = |fast: bool| {
            let model = if fast { &fast_model } else { &plain_model };
            input_gradient(model.as_ref(), F32.tensor(x.clone(), shape), &obj).unwrap()
        };
        let (f, p) = (run(true), run(false));
        let (ey, eg) = (rel_l2(&f.logits, &p.logits), rel_l2(&f.grad, &p.grad));
        eprintln!("lite0 {shape:?}: logits {ey:.1e}, input gradient {eg:.1e}");
        assert!(ey < 1e-5, "logits differ by {ey:.2e}");
        assert!(eg < 5e-3, "input gradients differ by {eg:.2e}");
    }
}
