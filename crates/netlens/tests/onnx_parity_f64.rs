//! The ONNX parity checks of `onnx_parity.rs` with the engine in float64 (reference
//! interpreter): free of float32 rounding, logits must agree with float64 PyTorch to 1e-6 of
//! the largest logit and input gradients to 1e-6 relative L2 (the fixtures store gradients
//! as float32: 6e-8 of rounding).

mod common;

use common::*;
use netlens::engine::{set_precision, Precision};

#[test]
fn every_exported_torchvision_model_matches_pytorch_in_float64() {
    set_precision(Precision::F64);
    let mut failures = Vec::new();
    for case in ONNX_CASES {
        let c = onnx_check(&fixture_dir("onnx").join(case));
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
