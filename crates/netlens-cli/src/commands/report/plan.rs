//! The report's plan: every experiment as the netlens command line that makes it (run
//! in-process by `exec`, shown on the page), in the page's sections. What each run wrote and
//! the parameters it ran with come back in its manifest, not from here.

use super::Args;
use crate::common::short_name;
use netlens::models;

/// One experiment: a netlens command line (the arguments after `netlens`), run in the
/// report's folder.
pub struct Experiment {
    pub section: usize,
    pub title: String,
    pub args: Vec<String>,
    /// HTML made from the command's output lines, placed after the figures.
    pub post: Option<fn(&str) -> String>,
}

pub const SECTIONS: [(&str, &str); 6] = [
    ("Q1–Q2. Saliency maps", "Which pixels move the class score? The vanilla gradient of the practical (Simonyan et al.), SmoothGrad and Grad-CAM on the same photos, and how often each map points at the object (localization benchmark)."),
    ("Q2. The limits of saliency, measured", "Is the map right? Every method scored on the sample photos against chance (random and centre maps): faithfulness (deletion, insertion, ROAD), robustness (infidelity, max-sensitivity), concentration (sparseness, complexity), localization (pointing game, IoU) and the sanity check of Adebayo et al. (does the map change when the network's weights are re-drawn?)."),
    ("Q3. Boxes from saliency", "Reusing the saliency map to find the object: threshold, connected components, boxes in the photo's pixels."),
    ("Q4. Other networks", "The same photos through every available network: architectures look at images differently."),
    ("Q5–Q7. Fooling images", "The smallest change that makes the network say another class, the change magnified, robustness to random vs. adversarial change, and transfer between networks."),
    ("Q8–Q11. Class visualization", "Images the network finds maximally of one class: the practical's recipe, its parameters, a start from a real photo, other networks, and the Lucid recipe beside it."),
];

/// A command line from string-like pieces.
macro_rules! args {
    ($($x:expr),* $(,)?) => { vec![$(String::from($x)),*] };
}

/// Every experiment of the report on `photos` (absolute paths) and `models` (default first).
pub fn plan(a: &Args, photos: &[String], models: &[String]) -> Vec<Experiment> {
    let q = a.quick;
    let seed = a.seed.to_string();
    let first = photos.first().cloned().unwrap_or_default();
    let coffee = photos
        .iter()
        .find(|p| p.contains("coffee"))
        .cloned()
        .unwrap_or(first.clone());
    let few: Vec<String> = photos.iter().take(if q { 2 } else { 5 }).cloned().collect();
    let default = models
        .first()
        .cloned()
        .unwrap_or_else(|| models::DEFAULT_MODEL.to_string());
    let all = models.join(",");
    let pick = |quick: &'static str, full: &'static str| if q { quick } else { full };
    let exp = |section, title: &str, args: Vec<String>| Experiment {
        section,
        title: title.to_string(),
        args,
        post: None,
    };
    let mut v = Vec::new();

    // Q1–Q2: saliency methods, and how often they point at the object.
    for (method, extra) in [
        ("vanilla", args![]),
        ("smoothgrad", args!["--samples", pick("8", "50")]),
        ("grad-cam", args![]),
    ] {
        let dir = format!("q1/{method}");
        let mut cmd = args![
            "saliency", "--model", &default, "--method", method, "--out", &dir, "--seed", &seed,
            "--json"
        ];
        cmd.extend(extra);
        cmd.extend(few.iter().cloned());
        v.push(exp(0, &format!("Saliency: {method}"), cmd));
    }
    let methods = pick(
        "vanilla,smoothgrad,grad-cam",
        "vanilla,gradient-x-input,smoothgrad,integrated-gradients,grad-cam",
    );
    v.push(exp(
        0,
        "Localization benchmark",
        args![
            "locate-bench",
            "--model",
            &default,
            "--methods",
            methods,
            "--samples",
            pick("4", "10"),
            "--seed",
            &seed,
            "--figure",
            "q1/locate-bench.png",
            "--json"
        ],
    ));

    // Q2: the limits of saliency, measured.
    v.push(Experiment {
        post: Some(super::q2::html),
        ..exp(
            1,
            "Metrics of every method on the sample photos",
            super::q2::command(&default, &few, q, &seed),
        )
    });

    // Q3: boxes, from Grad-CAM: the method with the best IoU in the benchmark above.
    let mut cmd = args!["locate", "--model", &default, "--method", "grad-cam", "--out", "q3"];
    cmd.extend(few.iter().cloned());
    v.push(exp(2, "Boxes from the Grad-CAM map", cmd));

    // Q4: every network.
    if models.len() > 1 {
        let mut cmd =
            args!["saliency", "--model", &all, "--method", "vanilla", "--out", "q4", "--json"];
        cmd.extend(few.iter().cloned());
        v.push(exp(3, "The same photos through every network", cmd));
    }

    // Q5–Q7: fooling, robustness, transfer.
    v.push(exp(
        4,
        "A fooling image (CS231n loop)",
        args![
            "fool",
            "--model",
            &default,
            "--target",
            "stingray",
            "--out",
            "q5/fooling.png",
            "--figure",
            "q5/figure.png",
            "--json",
            &first
        ],
    ));
    let mut cmd = args![
        "robustness",
        "--model",
        &default,
        "--plot",
        "q6/robustness.png",
        "--seed",
        &seed,
        "--json"
    ];
    if q {
        cmd.extend(args![
            "--draws",
            "1",
            "--steps",
            "3",
            "--sigmas",
            "4,32,128",
            "--epsilons",
            "1,4"
        ]);
    }
    cmd.extend(few.iter().cloned());
    v.push(exp(
        4,
        "Robustness: random noise vs. adversarial change",
        cmd,
    ));
    if models.len() > 1 {
        let mut cmd = args![
            "transfer",
            "--models",
            &all,
            "--method",
            "pgd",
            "--untargeted",
            "--epsilon",
            "8/255",
            "--full-steps",
            "--heatmap",
            "q7/transfer.png",
            "--seed",
            &seed,
            "--json"
        ];
        cmd.extend(few.iter().cloned());
        v.push(exp(4, "Transfer between networks", cmd));
    }

    // Q8–Q11: class visualization.
    let iters = pick("20", "200");
    for class in if q {
        vec!["gorilla"]
    } else {
        vec!["gorilla", "tarantula", "daisy", "snail", "stingray"]
    } {
        let out = format!("q8/{class}.png");
        v.push(exp(
            5,
            &format!("Class visualization: {class}"),
            args![
                "visualize",
                "--model",
                &default,
                "--class",
                class,
                "--iterations",
                iters,
                "--seed",
                &seed,
                "--out",
                &out,
                "--json"
            ],
        ));
    }
    v.push(exp(
        5,
        "Parameter sweep (L2 regularization × learning rate)",
        args![
            "visualize",
            "--model",
            &default,
            "--class",
            "gorilla",
            "--iterations",
            pick("10", "100"),
            "--seed",
            &seed,
            "--sweep",
            pick("l2-reg=1e-4,1e-2", "l2-reg=1e-4,1e-3,1e-2"),
            "--sweep",
            pick("learning-rate=25", "learning-rate=5,25,100"),
            "--out",
            "q9/sweep.png",
            "--json"
        ],
    ));
    v.push(exp(
        5,
        "Starting from a real photo",
        args![
            "visualize",
            "--model",
            &default,
            "--class",
            "espresso",
            "--init",
            &coffee,
            "--iterations",
            pick("10", "100"),
            "--snapshot-every",
            pick("5", "25"),
            "--seed",
            &seed,
            "--out",
            "q10/espresso.png",
            "--json"
        ],
    ));
    for m in models.iter().skip(1) {
        let out = format!("q11/{}-gorilla.png", short_name(m));
        v.push(exp(
            5,
            &format!("Class visualization on {m}"),
            args![
                "visualize",
                "--model",
                m,
                "--class",
                "gorilla",
                "--iterations",
                iters,
                "--seed",
                &seed,
                "--out",
                &out,
                "--json"
            ],
        ));
    }
    v.push(exp(
        5,
        "CS231n recipe vs. Lucid recipe",
        args![
            "visualize",
            "--model",
            &default,
            "--class",
            "gorilla",
            "--class",
            "daisy",
            "--recipe",
            "both",
            "--iterations",
            pick("10", "200"),
            "--seed",
            &seed,
            "--out",
            "q11/recipes.png",
            "--json"
        ],
    ));
    v
}
