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
    let _ = std::fs::remove_dir_all(&out);
}
