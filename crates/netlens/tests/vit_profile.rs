//! `netlens bench --profile` on a ViT (`fast::vit::stages`): every stage of the forward and
//! backward passes is timed, each row counts the calls a pass makes and the FLOPs of its
//! products (the last block's class-token-only work included), on a small odd ViT with
//! seeded weights. Its own test binary: the profile table is process-wide, and the other
//! ViT tests would add their passes to it.

mod common;

use common::seeded_vit::{spec, state_dict, ODD};
use netlens::bench::profile::profile_passes;
use netlens::engine::LoadOptions;
use netlens::models::{self, vit};

/// `ODD` (17 tokens, width 42 in 3 heads, MLP 100) with 3 blocks.
const CFG: vit::Config = vit::Config { layers: 3, ..ODD };

#[test]
fn every_vit_stage_is_timed_with_its_flops() {
    let model = models::build_with(
        spec("vit_profile", CFG),
        state_dict(&CFG, 5),
        LoadOptions::with_fast_path(true),
    )
    .unwrap();
    assert!(model.fast_path_unsupported().is_none());
    let (n, passes) = (2usize, 3usize);
    let p = profile_passes(model.as_ref(), n, passes, || {}).unwrap();
    let (t, c, m, l) = (CFG.tokens(), CFG.hidden, CFG.mlp, CFG.layers);
    let rows = n * t;
    let mm = |r: usize, i: usize, o: usize| (2 * r * i * o) as u64;
    let patches = n * CFG.grid() * CFG.grid();
    // (label, forward calls, backward calls, forward FLOPs, backward FLOPs) per pass; the
    // last block runs its queries, attention, projection and MLP for the class tokens only.
    let body = (l - 1) as u64;
    let expected: [(&str, u64, u64, u64, u64); 10] = [
        (
            "patch embedding 16×16→42",
            1,
            1,
            mm(patches, 768, c),
            mm(patches, 768, c),
        ),
        (
            "LayerNorm 42 (×7)",
            2 * l as u64 + 1,
            2 * l as u64 + 1,
            0,
            0,
        ),
        (
            "qkv 42→126 (×3)",
            l as u64,
            l as u64,
            body * mm(rows, c, 3 * c) + mm(rows, c, 2 * c) + mm(n, c, c),
            body * mm(rows, c, 3 * c) + mm(rows, c, 2 * c) + mm(n, c, c),
        ),
        (
            "attention 3 heads (×3)",
            l as u64,
            l as u64,
            body * (4 * rows * t * c) as u64 + (4 * n * t * c) as u64,
            body * (8 * rows * t * c) as u64 + (8 * n * t * c) as u64,
        ),
        (
            "out-projection 42→42 (×3)",
            l as u64,
            l as u64,
            body * mm(rows, c, c) + mm(n, c, c),
            body * mm(rows, c, c) + mm(n, c, c),
        ),
        (
            "mlp fc1 42→100 (×3)",
            l as u64,
            l as u64,
            body * mm(rows, c, m) + mm(n, c, m),
            body * mm(rows, c, m) + mm(n, c, m),
        ),
        ("bias + GELU 100 (×3)", l as u64, l as u64, 0, 0),
        (
            "mlp fc2 100→42 (×3)",
            l as u64,
            l as u64,
            body * mm(rows, m, c) + mm(n, m, c),
            body * mm(rows, m, c) + mm(n, m, c),
        ),
        ("bias adds (×9)", 3 * l as u64, 0, 0, 0),
        ("head 42→10", 1, 1, mm(n, c, 10), mm(n, c, 10)),
    ];
    assert_eq!(p.nodes.len(), expected.len(), "{:#?}", p.nodes);
    let k = passes as u64;
    for (i, (row, want)) in p.nodes.iter().zip(expected).enumerate() {
        let (label, fc, bc, ff, bf) = want;
        assert_eq!(row.node, i);
        assert_eq!(row.label, label);
        assert_eq!(
            (row.forward_calls, row.backward_calls),
            (k * fc, k * bc),
            "{label}: calls"
        );
        assert_eq!(
            (row.forward_flops, row.backward_flops),
            (k * ff, k * bf),
            "{label}: FLOPs"
        );
        assert!(row.forward_ms > 0.0, "{label}: no forward time");
        assert!(
            bc == 0 || row.backward_ms > 0.0,
            "{label}: no backward time"
        );
    }
    // The stages cover the pass: their times sum to most of its wall time.
    let sum: f64 = p.nodes.iter().map(|r| r.forward_ms + r.backward_ms).sum();
    assert!(
        sum <= p.wall_ms * 1.01,
        "{sum} ms of stages in {} ms",
        p.wall_ms
    );
}
