//! `netlens::evaluate::run` as a library call on real photos with EfficientNet-Lite0's real
//! weights: the rows come method by method, metric by metric, image by image; the means are
//! the means of the finite rows; the progress bar's total counts every image pass the run
//! makes; object boxes are scored and a missing one is a note and NaN; randomization is
//! refused on a network that is not a graph. (The numbers themselves are the CLI's: the
//! Python test `test_evaluate.py` compares them with `netlens evaluate --json`, and
//! `tests/metrics.rs` checks each metric against Quantus / PyTorch.)

mod common;

use common::*;
use netlens::evaluate::{self, Config, EvalMethod, Image, Network, Progress};
use netlens::imaging::{fit_with, load_rgb};
use netlens::metrics::Metric;
use netlens::saliency::Method;
use std::cell::{Cell, RefCell};

/// Counts each stage's ticks against its total.
#[derive(Default)]
struct Count {
    stages: RefCell<Vec<(String, usize, usize)>>,
    notes: RefCell<Vec<String>>,
    ticks: Cell<usize>,
}

impl Progress for Count {
    fn stage(&self, what: &str, total: usize) {
        self.stages.borrow_mut().push((what.to_string(), total, 0));
    }
    fn tick(&self, k: usize) {
        self.ticks.set(self.ticks.get() + k);
        if let Some(s) = self.stages.borrow_mut().last_mut() {
            s.2 += k;
        }
    }
    fn note(&self, what: &str) {
        self.notes.borrow_mut().push(what.to_string());
    }
}

#[test]
fn rows_means_progress_and_boxes() {
    let net = model("efficientnet_lite0");
    let g = net.spec().geometry();
    let truth = evaluate::boxes_beside(&[photo("chelsea.png")]).unwrap();
    let images: Vec<Image> = ["chelsea.png", "coffee.png"]
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = photo(f);
            let (input, placement) = fit_with(&load_rgb(&p).unwrap(), g.resize, g.crop);
            Image {
                name: f.to_string(),
                input,
                placement,
                // The second image's boxes are withheld: its box metrics must be NaN.
                boxes: (i == 0).then(|| truth.of(&p).unwrap().to_vec()),
            }
        })
        .collect();
    let config = Config {
        methods: vec![
            EvalMethod::Saliency(Method::Vanilla),
            EvalMethod::Centre,
            EvalMethod::Random,
        ],
        metrics: vec![
            Metric::Sparseness,
            Metric::Deletion,
            Metric::PointingGame,
            Metric::RoadMorf,
        ],
        step: 4096,
        road_percentages: vec![50.0],
        ..Config::default()
    };
    let count = Count::default();
    let e = evaluate::run(Network::Any(net), "lite0", &images, &config, &count).unwrap();

    // Order: per method, the metrics in the loop's order, each over the images.
    let order: Vec<(String, Metric, String)> = e
        .rows
        .iter()
        .map(|r| (r.method.clone(), r.metric, r.image.clone()))
        .collect();
    let mut want = Vec::new();
    let both = ["chelsea.png", "coffee.png"];
    for m in ["vanilla", "centre", "random"] {
        // The curves first (each over the images), then the per-image statistics.
        for metric in [Metric::Deletion, Metric::RoadMorf] {
            for i in both {
                want.push((m.to_string(), metric, i.to_string()));
            }
        }
        for i in both {
            for metric in [Metric::Sparseness, Metric::PointingGame] {
                want.push((m.to_string(), metric, i.to_string()));
            }
        }
    }
    assert_eq!(order, want);

    // Means: over the finite values; the withheld box gives NaN and a note.
    for (mi, m) in e.means.methods().iter().enumerate() {
        for &metric in e.means.metrics() {
            let v: Vec<f64> = e
                .rows
                .iter()
                .filter(|r| &r.method == m && r.metric == metric && r.value.is_finite())
                .map(|r| r.value)
                .collect();
            let mean = e.means.get(mi, metric).unwrap();
            assert_eq!(
                mean,
                v.iter().sum::<f64>() / v.len() as f64,
                "{m} {metric:?}"
            );
        }
    }
    let pg: Vec<f64> = e
        .rows
        .iter()
        .filter(|r| r.metric == Metric::PointingGame)
        .map(|r| r.value)
        .collect();
    assert!(pg.iter().step_by(2).all(|v| *v == 0.0 || *v == 1.0));
    assert!(pg.iter().skip(1).step_by(2).all(|v| v.is_nan()));
    assert_eq!(e.notes.len(), 1);
    assert!(e.notes[0].contains("coffee.png"), "{:?}", e.notes);
    assert_eq!(*count.notes.borrow(), e.notes);
    // The centre map of the cat photo peaks on the cat (its box covers the centre).
    assert_eq!(pg[2], 1.0);

    // Progress: one stage, whose ticks add up to its total.
    let stages = count.stages.borrow();
    assert_eq!(stages.len(), 1, "{stages:?}");
    assert!(stages[0].1 > 0);
    assert_eq!(
        stages[0].1, stages[0].2,
        "ticks against the announced total"
    );

    // The texts: one JSON line per row and per mean; the CSV's header, rows and means.
    assert_eq!(e.json_lines().len(), e.rows.len() + 3 * 4);
    assert_eq!(e.metrics_csv().lines().count(), 1 + e.rows.len() + 3 * 4);

    // Randomization re-draws a graph's weights: refused on any other classifier.
    let bad = Config {
        metrics: vec![Metric::Randomization],
        ..config.clone()
    };
    let err = evaluate::run(Network::Any(net), "lite0", &images, &bad, &count)
        .unwrap_err()
        .to_string();
    assert!(err.contains("randomization needs a graph network"), "{err}");
}

/// Memory holds a chunk of images, not the set: a run over more images than one chunk
/// (`streaming::chunk_size` of the batch size: 32 at batch 8) gives each image the values it
/// gets alone, and the rows in the one-chunk order (method, metric, image). The metrics with
/// noise (infidelity, max-sensitivity, the random map) draw it from the image's own pixels.
#[test]
fn chunks_give_each_image_its_own_values() {
    let net = model("efficientnet_lite0");
    let g = net.spec().geometry();
    let photos = ["chelsea.png", "coffee.png", "rocket.jpg"];
    let fitted: Vec<_> = photos
        .iter()
        .map(|f| fit_with(&load_rgb(&photo(f)).unwrap(), g.resize, g.crop))
        .collect();
    let n = netlens::streaming::chunk_size(&[8]) + 2;
    let images: Vec<Image> = (0..n)
        .map(|i| Image {
            name: format!("{i}"),
            input: fitted[i % 3].0.clone(),
            placement: fitted[i % 3].1,
            boxes: None,
        })
        .collect();
    let config = Config {
        methods: vec![EvalMethod::Saliency(Method::Vanilla), EvalMethod::Random],
        metrics: vec![
            Metric::Sparseness,
            Metric::Infidelity,
            Metric::MaxSensitivity,
        ],
        infidelity_samples: 2,
        sensitivity_samples: 1,
        ..Config::default()
    };
    let all = evaluate::run(
        Network::Any(net),
        "lite0",
        &images,
        &config,
        &evaluate::Silent,
    )
    .unwrap();
    assert_eq!(all.rows.len(), 2 * 3 * n);
    // Method, then metric, then image, across the chunk boundary.
    for (k, r) in all.rows.iter().enumerate() {
        assert_eq!(r.image, format!("{}", k % n), "row {k}");
    }
    // The last image (in the second chunk) alone: the same values, to the bit.
    let last = vec![images[n - 1].clone()];
    let alone = evaluate::run(
        Network::Any(net),
        "lite0",
        &last,
        &config,
        &evaluate::Silent,
    )
    .unwrap();
    for r in &alone.rows {
        let same = all
            .rows
            .iter()
            .find(|a| a.image == r.image && a.method == r.method && a.metric == r.metric)
            .unwrap();
        assert_eq!(same.value.to_bits(), r.value.to_bits(), "{r:?} vs {same:?}");
    }
    // Copies of one photo (images 0 and 3, in one chunk) get one value.
    for r in all.rows.iter().filter(|r| r.image == "0") {
        let copy = all
            .rows
            .iter()
            .find(|a| a.image == "3" && a.method == r.method && a.metric == r.metric)
            .unwrap();
        assert_eq!(copy.value.to_bits(), r.value.to_bits(), "{r:?}");
    }
}
