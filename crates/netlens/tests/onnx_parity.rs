//! ONNX files exported by `torch.onnx.export` (opset 17) from torchvision's own classes, with
//! seeded random weights (`tools/reference/onnx_fixtures.py`), against float64 PyTorch, with
//! the engine in float32 (the default; the fast path on where the graph lowers onto it).
//!
//! Tolerances: logits within 1e-4 of the largest logit (float32 accumulation over a few
//! thousand products is ~1e-6; the bound is 1e-4). Input gradients within 4× PyTorch's
//! own float32-vs-float64 difference on the same file, and never tighter than 2e-5: both
//! engines round in float32, so a ReLU or max-pool near its kink can flip in either; the
//! factor 4 leaves room for netlens and PyTorch flipping different ones.

mod common;

use common::*;
use netlens::Classifier;

#[test]
fn every_exported_torchvision_model_matches_pytorch() {
    let mut failures = Vec::new();
    for case in ONNX_CASES {
        let c = onnx_check(&fixture_dir("onnx").join(case));
        let tol = (4.0 * c.torch_f32_err).max(2e-5);
        let fast = c.model.fast_path_unsupported().is_none();
        eprintln!(
            "{case:26} logits {:.1e}  grad {:.1e} (PyTorch f32 {:.1e}, bound {tol:.1e})  fast path: {fast}",
            c.logit_err, c.grad_err, c.torch_f32_err
        );
        if c.logit_err > 1e-4 || c.grad_err > tol {
            failures.push(format!(
                "{case}: logits {:.2e} grad {:.2e}",
                c.logit_err, c.grad_err
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn zoo_cnn_and_resnet_exports_run_on_the_fast_path() {
    for case in [
        "squeezenet1_1_tiny",
        "vgg16_tiny",
        "resnet18_tiny",
        "resnet50_tiny",
    ] {
        let c = onnx_check(&fixture_dir("onnx").join(case));
        assert_eq!(c.model.fast_path_unsupported(), None, "{case}");
    }
}

#[test]
fn a_final_softmax_is_left_out() {
    let c = onnx_check(&fixture_dir("onnx").join("resnet18_tiny_softmax"));
    assert!(c.model.spec().summary.contains("Softmax"));
    assert!(
        c.logit_err < 1e-4,
        "the logits before the softmax: {}",
        c.logit_err
    );
}

#[test]
fn onnx_layers_can_be_tapped() {
    use netlens::engine::tensor_values;
    for case in [
        "resnet18_tiny",
        "densenet121_tiny",
        "mobilenet_v3_small_tiny",
    ] {
        let c = onnx_check(&fixture_dir("onnx").join(case));
        let m = &c.model;
        let layers = m.layer_info();
        assert!(layers.len() >= 4, "{case}: {layers:?}");
        let cam = m.cam_layer();
        let info = layers.iter().find(|l| l.name == cam).unwrap();
        assert!(info.shape[1] * info.shape[2] > 1, "{case}: {info:?}");
        let s = m.spec().input_size as usize;
        let x = netlens::engine::Precision::F32.tensor(
            (0..2 * 3 * s * s)
                .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
                .collect(),
            [2, 3, s, s],
        );
        let direct = tensor_values(m.forward(x.clone()));
        for l in [&layers[0], &layers[layers.len() / 2], info] {
            let a = m.forward_to(x.clone(), &l.name).unwrap();
            assert_eq!(a.dims()[1..], l.shape[..], "{case} {}", l.name);
            let y = tensor_values(m.forward_from(a, &l.name).unwrap());
            assert!(rel_l2(&y, &direct) < 1e-5, "{case}: {}", l.name);
        }
        assert!(m.forward_to(x, "no such layer").is_err());
    }
}

// The float64 checks, once `onnx_parity_f64.rs`: a binary of its own while precision was
// process-wide, now the same weights loaded a second time, in float64.
mod float64 {
    //! The ONNX parity checks above with each model loaded in float64 (reference
    //! interpreter): free of float32 rounding, logits must agree with float64 PyTorch to 1e-6 of
    //! the largest logit and input gradients to 1e-6 relative L2 (the fixtures store gradients
    //! as float32: 6e-8 of rounding).

    use crate::common::*;
    use netlens::engine::Precision;

    #[test]
    fn every_exported_torchvision_model_matches_pytorch_in_float64() {
        let mut failures = Vec::new();
        for case in ONNX_CASES {
            let c = onnx_check_in(&fixture_dir("onnx").join(case), Precision::F64);
            eprintln!(
                "{case:26} logits {:.1e}  grad {:.1e}",
                c.logit_err, c.grad_err
            );
            if c.logit_err > 1e-6 || c.grad_err > 1e-6 {
                failures.push(format!(
                    "{case}: logits {:.2e} grad {:.2e}",
                    c.logit_err, c.grad_err
                ));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
