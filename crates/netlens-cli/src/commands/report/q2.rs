//! The report's Q2 section ("what are the limits of saliency?"), answered with measurements:
//! one `netlens evaluate` run on the sample photos (every method and both chance baselines),
//! whose mean per method × metric (the `--json` lines with `"image": null`) becomes a table
//! on the page, beside the deletion / ROAD curves and the randomization figure, followed by a
//! reading written from the numbers themselves (so it stays true when they change).

use super::page::esc;
use netlens::metrics::Metric;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The evaluate command line (the arguments after `netlens`); its figures and parameters
/// come back in its manifest.
pub fn command(model: &str, photos: &[String], quick: bool, seed: &str) -> Vec<String> {
    let mut args: Vec<String> = ["evaluate", "--model", model, "--out", "q2", "--seed", seed]
        .map(String::from)
        .to_vec();
    let photos = if quick {
        // About a minute on two cores: two photos, the cheap metrics, coarse curves.
        args.extend(
            [
                "--methods",
                "vanilla,grad-cam,random,centre",
                "--metrics",
                "deletion,insertion,road-morf,road-lerf,randomization,sparseness,complexity,pointing-game,iou",
                "--step",
                "1792",
                "--road-percentages",
                "20,50,80",
            ]
            .map(String::from),
        );
        &photos[..photos.len().min(2)]
    } else {
        args.extend(["--step", "448"].map(String::from));
        photos
    };
    args.push("--json".into());
    args.extend(photos.iter().cloned());
    args
}

/// method → metric → mean, in the order the methods appear.
fn means(stdout: &str) -> (Vec<String>, BTreeMap<(String, Metric), f64>) {
    let mut order = Vec::new();
    let mut v = BTreeMap::new();
    for line in stdout.lines() {
        let Ok(j) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if !j["image"].is_null() {
            continue;
        }
        let (Some(m), Some(metric)) = (j["method"].as_str(), j["metric"].as_str()) else {
            continue;
        };
        let Ok(metric) = Metric::parse(metric) else {
            continue;
        };
        if !order.iter().any(|o| o == m) {
            order.push(m.to_string());
        }
        v.insert(
            (m.to_string(), metric),
            j["value"].as_f64().unwrap_or(f64::NAN),
        );
    }
    (order, v)
}

/// The table of means and the reading, as HTML.
pub fn html(stdout: &str) -> String {
    let (methods, v) = means(stdout);
    if methods.is_empty() {
        return String::new();
    }
    let metrics: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| methods.iter().any(|me| v.contains_key(&(me.clone(), *m))))
        .collect();
    let mut h = String::from("<table class=metrics><tr><th>method</th>");
    for m in &metrics {
        let _ = write!(
            h,
            "<th>{} {}</th>",
            m.name(),
            if m.higher_is_better() { "↑" } else { "↓" }
        );
    }
    h.push_str("</tr>");
    let get = |me: &str, m: Metric| v.get(&(me.to_string(), m)).copied();
    for me in &methods {
        let _ = write!(h, "<tr><td>{}</td>", esc(me));
        for &m in &metrics {
            // Bold the best real method (baselines excluded) per column.
            let best = best_method(&methods, m, &|x, m| get(x, m).filter(|v| v.is_finite()));
            let val = get(me, m).filter(|v| v.is_finite());
            let cell = val.map_or("–".to_string(), |v| format!("{v:.3}"));
            if best == Some(me.as_str()) {
                let _ = write!(h, "<td><b>{cell}</b></td>");
            } else {
                let _ = write!(h, "<td>{cell}</td>");
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><p class=params>Means over the photos; the best method per column in bold (baselines excluded). ↑/↓: the better direction.</p>");
    let _ = write!(h, "<div class=reading><h4>What the numbers say</h4><ul>");
    for s in reading(&methods, &|me, m| get(me, m)) {
        let _ = write!(h, "<li>{}</li>", esc(&s));
    }
    h.push_str("</ul></div>");
    h
}

/// The real method (baselines excluded) with the best finite value of `metric`; the first on
/// ties.
fn best_method<'a>(
    methods: &'a [String],
    metric: Metric,
    get: &dyn Fn(&str, Metric) -> Option<f64>,
) -> Option<&'a str> {
    methods
        .iter()
        .filter(|x| !is_baseline(x))
        .filter_map(|x| get(x, metric).filter(|v| v.is_finite()).map(|v| (x, v)))
        .reduce(|a, b| {
            let better = if metric.higher_is_better() {
                b.1 > a.1
            } else {
                b.1 < a.1
            };
            if better {
                b
            } else {
                a
            }
        })
        .map(|(x, _)| x.as_str())
}

fn is_baseline(m: &str) -> bool {
    m == "random" || m == "centre"
}

/// Sentences read off the means.
fn reading(methods: &[String], get: &dyn Fn(&str, Metric) -> Option<f64>) -> Vec<String> {
    let real: Vec<&String> = methods.iter().filter(|m| !is_baseline(m)).collect();
    let mut out = Vec::new();
    let val = |m: &str, k: Metric| get(m, k).filter(|v| v.is_finite());
    // Faithfulness against chance.
    for (metric, what) in [
        (
            Metric::Deletion,
            "deletion (pixels removed most important first, lower is better)",
        ),
        (
            Metric::RoadMorf,
            "ROAD MoRF (removal without the mask's shape leaking, lower is better)",
        ),
        (Metric::Insertion, "insertion (higher is better)"),
    ] {
        let Some(r) = val("random", metric) else {
            continue;
        };
        let better: Vec<String> = real
            .iter()
            .filter(|m| {
                val(m, metric).is_some_and(|v| {
                    if metric.higher_is_better() {
                        v > r
                    } else {
                        v < r
                    }
                })
            })
            .map(|m| m.to_string())
            .collect();
        let c = val("centre", metric)
            .map(|c| format!(" and the centre map {c:.3}"))
            .unwrap_or_default();
        out.push(format!(
            "On {what}, {} of {} methods beat the random map ({r:.3}{c}){}.",
            better.len(),
            real.len(),
            if better.is_empty() {
                String::new()
            } else {
                format!(": {}", better.join(", "))
            }
        ));
    }
    // The deletion artifact ROAD removes.
    if let (Some(rd), Some(rr)) = (
        val("random", Metric::Deletion),
        val("random", Metric::RoadMorf),
    ) {
        let beaten_on_deletion = real
            .iter()
            .filter(|m| val(m, Metric::Deletion).is_some_and(|v| v > rd))
            .count();
        let beating_on_road = real
            .iter()
            .filter(|m| val(m, Metric::RoadMorf).is_some_and(|v| v < rr))
            .count();
        if beaten_on_deletion > 0 && beating_on_road > 0 {
            out.push(format!(
                "The random map deletes the class faster ({rd:.3}) than {beaten_on_deletion} of \
                 the methods: scattered black pixels take the image off the training \
                 distribution, whatever their order. With ROAD's imputation that advantage goes \
                 ({rr:.3}; {beating_on_road} method{} now do{} better): the deletion score partly \
                 measures the mask, not the map.",
                if beating_on_road == 1 { "" } else { "s" },
                if beating_on_road == 1 { "es" } else { "" }
            ));
        }
    }
    // Metrics disagree.
    let ranked: Vec<(Metric, String)> = [
        Metric::Deletion,
        Metric::Insertion,
        Metric::RoadMorf,
        Metric::RoadLerf,
        Metric::Infidelity,
        Metric::MaxSensitivity,
    ]
    .into_iter()
    .filter_map(|m| best_method(methods, m, &val).map(|b| (m, b.to_string())))
    .collect();
    let mut winners: Vec<&String> = ranked.iter().map(|(_, b)| b).collect();
    winners.sort();
    winners.dedup();
    if winners.len() > 1 {
        out.push(format!(
            "The metrics do not agree on the best method: {}. Faithfulness depends on how \
             pixels are removed and what is measured, a first limit of any single score.",
            ranked
                .iter()
                .map(|(m, b)| format!("{} picks {b}", m.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // Randomization.
    let rho: Vec<(String, f64)> = real
        .iter()
        .filter_map(|m| val(m, Metric::Randomization).map(|v| (m.to_string(), v)))
        .collect();
    if !rho.is_empty() {
        let (low, high): (Vec<_>, Vec<_>) = rho.iter().partition(|(_, v)| v.abs() < 0.3);
        let fmt = |v: &[&(String, f64)]| {
            v.iter()
                .map(|(m, r)| format!("{m} ρ = {r:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(format!(
            "Sanity check (Adebayo et al.): with every learned layer re-drawn, {} — the map \
             changed with the weights{}. {}",
            if low.is_empty() {
                "no method's map decorrelates".to_string()
            } else {
                fmt(&low)
            },
            if high.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} stay correlated with the trained network's map, so part of what they \
                     show is the image, not the network",
                    fmt(&high)
                )
            },
            "The random and centre maps keep ρ = 1 by construction: they ignore the network."
        ));
    }
    // Localization.
    if let (Some(c), Some(_)) = (
        val("centre", Metric::PointingGame),
        real.first().and_then(|m| val(m, Metric::PointingGame)),
    ) {
        let beat: Vec<String> = real
            .iter()
            .filter_map(|m| val(m, Metric::PointingGame).map(|v| (m, v)))
            .filter(|(_, v)| *v > c)
            .map(|(m, v)| format!("{m} {v:.2}"))
            .collect();
        out.push(format!(
            "Pointing game: the centre map alone hits {c:.2} of the objects (photographers centre \
             their subject); {}.",
            if beat.is_empty() {
                "no method does better than that".to_string()
            } else {
                format!("better: {}", beat.join(", "))
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_reading_from_json_lines() {
        let lines = [
            r#"{"image":"a.png","model":"m","method":"vanilla","metric":"deletion","value":0.1}"#,
            r#"{"image":null,"model":"m","method":"vanilla","metric":"deletion","value":0.1}"#,
            r#"{"image":null,"model":"m","method":"grad-cam","metric":"deletion","value":0.2}"#,
            r#"{"image":null,"model":"m","method":"random","metric":"deletion","value":0.15}"#,
            r#"{"image":null,"model":"m","method":"vanilla","metric":"randomization","value":0.05}"#,
            r#"{"image":null,"model":"m","method":"grad-cam","metric":"randomization","value":0.6}"#,
        ]
        .join("\n");
        let h = html(&lines);
        assert!(h.contains("<b>0.100</b>"), "{h}");
        assert!(h.contains("1 of 2 methods beat the random map"), "{h}");
        assert!(h.contains("vanilla ρ = 0.05"), "{h}");
        assert!(h.contains("grad-cam ρ = 0.60 stay correlated"), "{h}");
        assert_eq!(html("no json"), "");
    }
}
