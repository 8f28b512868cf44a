//! `netlens report --quick` end to end: every section runs, and every image the page
//! references exists.

use std::path::Path;
use std::process::Command;

#[test]
fn quick_report_references_only_existing_images() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::temp_dir().join(format!("netlens-report-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(env!("CARGO_BIN_EXE_netlens"))
        .args([
            "report",
            "--quick",
            "--models",
            "efficientnet_lite0,efficientnet_lite1",
            "--out",
        ])
        .arg(&out)
        .current_dir(&root)
        .output()
        .expect("run netlens report");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    assert!(
        !html.contains("class=fail"),
        "an experiment failed:\n{html}"
    );
    let mut images = 0;
    for part in html.split("<img src=\"").skip(1) {
        let src = part.split('"').next().unwrap_or_default();
        let path = out.join(src);
        assert!(
            path.is_file(),
            "the page references {src}, which does not exist"
        );
        let img = image::open(&path).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert!(
            img.width() > 50 && img.height() > 50,
            "{src} is too small to be a figure"
        );
        images += 1;
    }
    for section in ["Q1", "Q2. The limits of saliency", "Q3", "Q4", "Q5", "Q8"] {
        assert!(html.contains(section), "section {section} missing");
    }
    assert!(images >= 10, "only {images} figures on the page");
    // The measured Q2 section: the table of means with the baselines, and its reading.
    assert!(html.contains("<table class=metrics>"), "no metrics table");
    assert!(html.contains("<td>centre</td>") && html.contains("What the numbers say"));
    // The command line shown beside a figure reproduces it: run as printed, in a fresh
    // folder, it writes the same bytes (the report ran it in-process on shared models).
    let again = std::env::temp_dir().join(format!("netlens-report-again-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&again);
    std::fs::create_dir_all(&again).expect("scratch folder");
    for (title, figure) in [
        ("Saliency: smoothgrad", "q1/smoothgrad/figure.png"),
        ("Class visualization: gorilla", "q8/gorilla.png"),
    ] {
        let args = shown_command(&html, title);
        let run = Command::new(env!("CARGO_BIN_EXE_netlens"))
            .args(&args)
            .current_dir(&again)
            .output()
            .expect("run the shown command");
        assert!(
            run.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let a = std::fs::read(out.join(figure)).expect("the report's figure");
        let b = std::fs::read(again.join(figure)).expect("the rerun's figure");
        assert!(
            a == b,
            "{figure}: the command shown beside it gives other bytes"
        );
    }
    let _ = std::fs::remove_dir_all(&again);
    let _ = std::fs::remove_dir_all(&out);
}

/// The arguments of the `netlens ...` line shown under the experiment titled `title`.
fn shown_command(html: &str, title: &str) -> Vec<String> {
    let block = html
        .split("<div class=exp><h3>")
        .find(|b| b.starts_with(&format!("{title}</h3>")))
        .unwrap_or_else(|| panic!("no experiment {title}"));
    let code = block
        .split("<code>netlens ")
        .nth(1)
        .and_then(|c| c.split("</code>").next())
        .unwrap_or_else(|| panic!("no command line under {title}"));
    code.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .split_whitespace()
        .map(String::from)
        .collect()
}
