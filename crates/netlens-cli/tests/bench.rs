//! `netlens bench` end to end, in its smallest form: one model, batch 1, one run, no PyTorch;
//! the JSON must carry positive fast-path and plain-path figures for every measurement, timed
//! on the published weights (fetched into the cache if missing), in two rounds whose runs
//! are merged; and the method table's Grad-CAM row, with the FLOPs it counted.

mod common;

use common::netlens;

#[test]
fn bench_json_has_fast_and_plain_figures() {
    // The bench fetches Lite0's published weights into the cache when they are missing.
    let out = netlens(&[
        "bench",
        "--models",
        "efficientnet_lite0",
        "--batches",
        "1",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--rounds",
        "2",
        "--no-torch",
        "--classviz-iterations",
        "2",
        "--methods",
        "gradcam",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let models = v["models"].as_array().expect("models");
    assert_eq!(models.len(), 1);
    let m = &models[0];
    assert_eq!(m["model"], "efficientnet_lite0");
    assert_eq!(m["weights"], "cache");
    assert_eq!(m["random_weights"], false);
    let rows = m["results"].as_array().expect("results");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["forward", "forward_backward", "classviz2"], "{m}");
    for r in rows {
        for key in ["netlens_fast_ms", "netlens_plain_ms"] {
            let ms = r[key].as_f64().unwrap_or(-1.0);
            assert!(
                ms > 0.0,
                "{key} of {} is not a positive number: {r}",
                r["name"]
            );
        }
        assert!(r["torch_module_ms"].is_null(), "{r}");
    }
    // Lite0's forward pass is ~0.4 G multiply-adds (0.77–0.81 GFLOP as published); the
    // forward+backward pass counts twice that; the share of the measured peak is a fraction.
    let gflop = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .map(|r| r["gflop"].as_f64())
    };
    let fwd = gflop("forward").flatten().unwrap_or(-1.0);
    assert!((0.7..0.9).contains(&fwd), "forward GFLOP {fwd}: {m}");
    assert_eq!(gflop("forward_backward").flatten(), Some(2.0 * fwd));
    assert!(v["peak_gflops"].as_f64().unwrap_or(-1.0) > 0.0, "{v}");
    let share = rows[0]["fast_peak_fraction"].as_f64().unwrap_or(-1.0);
    assert!(share > 0.0 && share < 1.5, "share of peak {share}");
    // A class visualization's FLOPs are counted on the fast path as it ran: two iterations of
    // forward + backward, and the forwards of its start and final probabilities — six
    // forwards, to the operation (the counts are integers; 1e-12 covers the division by 1e9).
    let classviz = gflop("classviz2").flatten().unwrap_or(-1.0);
    assert!(
        (classviz - 6.0 * fwd).abs() <= 1e-12 * classviz,
        "classviz2 GFLOP {classviz}, forward {fwd}"
    );
    // Two rounds of one timed run each for the fast path; the plain path runs once.
    assert_eq!(v["rounds"], 2, "{v}");
    assert_eq!(m["netlens_fast"]["results"][0]["runs"], 2, "{m}");
    assert_eq!(m["netlens_plain"]["results"][0]["runs"], 1, "{m}");
    assert_eq!(v["methods"][0]["netlens_runs"], 2, "{v}");
    for key in ["netlens_fast", "netlens_plain"] {
        let rss = m["peak_rss_mb"][key].as_f64().unwrap_or(-1.0);
        assert!(rss > 0.0, "peak RSS of {key} missing: {m}");
    }
    // The method table: Grad-CAM on the five photos, netlens only (no PyTorch here).
    let methods = v["methods"].as_array().expect("methods");
    assert_eq!(methods.len(), 1, "{v}");
    let g = &methods[0];
    assert_eq!(g["method"], "gradcam");
    assert!(g["netlens_ms"].as_f64().unwrap_or(-1.0) > 0.0, "{g}");
    assert!(
        g["peak_rss_mb"]["netlens"].as_f64().unwrap_or(-1.0) > 0.0,
        "{g}"
    );
    assert!(
        g["anchor_ms"].is_null() && g["errors"]["netlens"].is_null(),
        "{g}"
    );
    // Grad-CAM's FLOPs: the five photos' forwards, and the classifier's backward (1280 → 1000)
    // to the head activation it taps, nothing below it.
    let g_gflop = g["gflop"].as_f64().unwrap_or(-1.0);
    let want = 5.0 * fwd + 5.0 * 2.0 * 1280.0 * 1000.0 / 1e9;
    assert!(
        (g_gflop - want).abs() <= 1e-12 * want,
        "Grad-CAM GFLOP {g_gflop}, want {want}: {g}"
    );
    let share = g["fast_peak_fraction"].as_f64().unwrap_or(-1.0);
    assert!(
        share > 0.0 && share < 1.5,
        "Grad-CAM's share of peak {share}"
    );
}

/// `bench --profile`: Lite0's forward + backward pass node by node, at two batch sizes: every
/// layer of the graph gets a row with positive times (its stem, a depthwise layer, the
/// classifier), and the rows' shares add up to the whole.
#[test]
fn bench_profile_times_every_layer() {
    let out = netlens(&[
        "bench",
        "--profile",
        "--models",
        "efficientnet_lite0",
        "--batches",
        "1,2",
        "--repeats",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for batch in ["batch 1: 2 passes", "batch 2: 2 passes"] {
        assert!(stdout.contains(batch), "no {batch:?} in:\n{stdout}");
    }
    let rows = |label: &str| -> Vec<Vec<String>> {
        stdout
            .lines()
            .filter(|l| l.contains(label))
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    };
    for label in [
        "conv 3→32 3×3/2 112×112",
        "depthwise 32 3×3/1 112×112",
        "dense 1280→1000",
    ] {
        let found = rows(label);
        assert_eq!(found.len(), 2, "{label}: one row per batch:\n{stdout}");
        for r in found {
            // node, label words..., fwd ms, bwd ms, fwd GF/s, bwd GF/s, share
            let n = r.len();
            let ms = |i: usize| r[i].parse::<f64>().unwrap_or(-1.0);
            // The classifier's backward pass reads one live output at batch 1: ~0.00 ms.
            let dense = label.starts_with("dense");
            assert!(ms(n - 5) > 0.0, "{label}: {r:?}");
            assert!(
                ms(n - 4) > 0.0 || (dense && ms(n - 4) == 0.0),
                "{label}: {r:?}"
            );
            assert!(ms(n - 3) > 0.0, "{label}: no forward FLOP rate: {r:?}");
        }
    }
    // Every row's share, per batch: together the whole pass (rounded to 0.1 %).
    for part in stdout.split("passes, ").skip(1) {
        let total: f64 = part
            .lines()
            .filter_map(|l| l.trim().strip_suffix('%'))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum();
        assert!(
            (total - 100.0).abs() < 3.0,
            "shares sum to {total}:\n{part}"
        );
    }
}
