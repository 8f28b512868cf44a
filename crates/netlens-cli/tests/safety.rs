//! Nothing lost, nothing wedged (issue 15): outputs appear whole or not at all, are never
//! written over an input or (without --force) over an existing file, even by a concurrent run;
//! the report is swapped in whole; only regular files of bounded size are read; every numeric
//! flag is range-checked by name.
//!
//! Commands run on the committed tiny ONNX model (64 px, random weights), under an 8 GB address
//! space limit so that a regression (an unbounded read or allocation) fails instead of
//! exhausting the machine. `NETLENS_TEST_BIN` runs the tests against another binary (to see
//! them fail on an older one).

mod common;

use common::{fresh_dir, root};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MODEL: &str = "crates/netlens/tests/fixtures/onnx/resnet18_tiny/model.onnx";
const PHOTO: &str = "assets/photos/chelsea.png";

fn bin() -> PathBuf {
    std::env::var_os("NETLENS_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_netlens")))
}

/// `netlens ARGS` after the shell `setup` (limits, signal dispositions), from the repository
/// root, with an 8 GB address-space limit.
fn command(setup: &str, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v 8000000; {setup} exec \"$0\" \"$@\""))
        // Few malloc arenas, so that the address-space limit holds on machines with many cores.
        .env("MALLOC_ARENA_MAX", "2")
        .arg(bin())
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null());
    c
}

fn run_with(setup: &str, args: &[&str]) -> Output {
    command(setup, args).output().expect("run netlens")
}

fn netlens(args: &[&str]) -> Output {
    run_with("", args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure that mentions every needle (case-insensitive), without a panic.
fn fails_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure; stderr: {err}");
    assert!(
        o.status.code().is_some(),
        "killed by a signal instead of failing cleanly: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    for n in needles {
        assert!(
            err.to_lowercase().contains(&n.to_lowercase()),
            "stderr lacks '{n}': {err}"
        );
    }
}

fn succeeds(o: &Output) {
    assert!(
        o.status.success(),
        "expected success; stderr: {}",
        stderr(o)
    );
}

fn scratch(name: &str) -> PathBuf {
    fresh_dir("safety", name)
}

/// Writes a file (the tests' own fixtures).
fn put(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Names in `dir` (recursively) that look like temporary files.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains("netlens-tmp") {
            out.push(name);
        } else if e.path().is_dir() {
            out.extend(leftovers(&e.path()));
        }
    }
    out
}

/// Files a run may write at most 2 KiB into (RLIMIT_FSIZE), the way a full disk stops it;
/// with `trap '' XFSZ` the write fails with an error, without it the process is killed.
const FULL_DISK: &str = "trap '' XFSZ; ulimit -f 4;";
const KILLED_WHILE_WRITING: &str = "ulimit -f 4;";

#[test]
fn outputs_appear_whole_or_not_at_all_on_a_full_disk() {
    let dir = scratch("full");
    let png = dir.join("gorilla.png");
    let o = run_with(
        FULL_DISK,
        &[
            "visualize",
            "--model",
            MODEL,
            "-c",
            "gorilla",
            "--iterations",
            "2",
            "-o",
            s(&png),
        ],
    );
    fails_with(&o, &["cannot write", "gorilla.png"]);
    assert!(!png.exists(), "a partial {} was left", png.display());

    let sal = dir.join("sal");
    let o = run_with(
        FULL_DISK,
        &["saliency", "--model", MODEL, "-o", s(&sal), PHOTO],
    );
    fails_with(&o, &["cannot write"]);
    assert!(
        !sal.join("chelsea.npy").exists(),
        "a truncated .npy was left"
    );
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    // Nothing half-written blocks the rerun.
    succeeds(&netlens(&[
        "saliency",
        "--model",
        MODEL,
        "-o",
        s(&sal),
        PHOTO,
    ]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_forced_run_killed_while_writing_keeps_the_previous_file() {
    let dir = scratch("killed");
    let png = dir.join("gorilla.png");
    let args = [
        "visualize",
        "--model",
        MODEL,
        "-c",
        "gorilla",
        "--iterations",
        "2",
        "-o",
        s(&png),
    ];
    succeeds(&netlens(&args));
    let before = std::fs::read(&png).unwrap();
    let mut forced = vec!["--force"];
    forced.extend(args);
    let n = forced.len();
    forced[n - 3] = "3"; // other iterations, other bytes
    let o = run_with(KILLED_WHILE_WRITING, &forced);
    assert!(!o.status.success(), "the write should have been stopped");
    assert_eq!(
        std::fs::read(&png).unwrap(),
        before,
        "the previous file was destroyed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_runs_for_the_same_output_never_lose_one_silently() {
    let dir = scratch("race");
    let png = dir.join("same.png");
    let spawn = |seed: &str| {
        command(
            "",
            &[
                "visualize",
                "--model",
                MODEL,
                "-c",
                "gorilla",
                "--iterations",
                "800",
                "--seed",
                seed,
                "-o",
                s(&png),
                "--json",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    // Both start before either has written: both pass the check at start.
    let (a, b) = (spawn("1"), spawn("2"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(
        ok,
        1,
        "exactly one run must win; stderr: {} / {}",
        stderr(&a),
        stderr(&b)
    );
    let loser = if a.status.success() { &b } else { &a };
    fails_with(loser, &["already exists"]);
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_input_is_never_replaced_even_with_force() {
    let dir = scratch("input");
    let photo = dir.join("cat.png");
    let original = std::fs::read(root().join(PHOTO)).unwrap();
    put(&photo, &original);
    // saliency maps are named <stem>.png: into the photo's own folder, one would be the photo.
    let o = netlens(&[
        "--force",
        "saliency",
        "--model",
        MODEL,
        "-o",
        s(&dir),
        s(&photo),
    ]);
    fails_with(&o, &["cat.png", "input"]);
    // Also through another spelling of the same path.
    let other = format!("{}/./cat.png", dir.display());
    let o = netlens(&[
        "--force",
        "fool",
        "--model",
        MODEL,
        "--target",
        "6",
        "--max-iterations",
        "2",
        "-o",
        &other,
        s(&photo),
    ]);
    fails_with(&o, &["input"]);
    let o = netlens(&[
        "--force",
        "visualize",
        "--model",
        MODEL,
        "-c",
        "6",
        "--iterations",
        "2",
        "--init",
        s(&photo),
        "-o",
        s(&photo),
    ]);
    fails_with(&o, &["input"]);
    assert_eq!(
        std::fs::read(&photo).unwrap(),
        original,
        "the input was replaced"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_refuses_an_existing_folder_without_force_and_is_swapped_in_whole() {
    let dir = scratch("report");
    let out = dir.join("rep");
    std::fs::create_dir_all(out.join("q1")).unwrap();
    put(&out.join("q1/notes.txt"), b"mine");
    let args = [
        "report",
        "--quick",
        "--models",
        MODEL,
        "--images",
        PHOTO,
        "--out",
        s(&out),
    ];
    let o = netlens(&args);
    fails_with(&o, &["already exists", "--force"]);
    assert_eq!(std::fs::read(out.join("q1/notes.txt")).unwrap(), b"mine");

    // With --force a folder that is not a report is still not replaced.
    let mut forced = vec!["--force"];
    forced.extend(args);
    fails_with(&netlens(&forced), &["not a netlens report"]);
    assert!(out.join("q1/notes.txt").is_file());

    // A report folder is replaced whole: nothing stale survives, no staging folder is left.
    put(&out.join("index.html"), b"old report");
    succeeds(&netlens(&forced));
    assert!(!out.join("q1/notes.txt").exists(), "a stale file survived");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("netlens report"));
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));

    // Never a folder holding an input.
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    put(&photos.join("index.html"), b"x");
    put(
        &photos.join("cat.png"),
        &std::fs::read(root().join(PHOTO)).unwrap(),
    );
    let cat = photos.join("cat.png");
    let o = netlens(&[
        "--force",
        "report",
        "--quick",
        "--models",
        MODEL,
        "--images",
        s(&cat),
        "--out",
        s(&photos),
    ]);
    fails_with(&o, &["input"]);
    assert!(cat.is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_exits_non_zero_when_an_experiment_failed() {
    let dir = scratch("report-fail");
    let bad = dir.join("bad.png");
    put(&bad, b"not an image");
    let out = dir.join("rep");
    let o = netlens(&[
        "report",
        "--quick",
        "--models",
        MODEL,
        "--images",
        s(&bad),
        "--out",
        s(&out),
    ]);
    fails_with(&o, &["experiments failed"]);
    let html = std::fs::read_to_string(out.join("index.html")).expect("the page is written");
    assert!(html.contains("class=fail"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_regular_files_of_bounded_size_are_read() {
    let dir = scratch("read");
    fails_with(
        &netlens(&["classify", "--model", MODEL, "/dev/zero"]),
        &["regular file"],
    );
    fails_with(
        &netlens(&["classify", "--model", MODEL, s(&dir)]),
        &["folder"],
    );
    fails_with(
        &netlens(&["classify", "--weights", "/dev/zero", PHOTO]),
        &["/dev/zero", "regular file"],
    );
    // A FIFO with no writer: refused at once, not waited on.
    let fifo = dir.join("pipe.png");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut child = command("", &["classify", "--model", MODEL, s(&fifo)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("netlens hangs on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fails_with(&child.wait_with_output().unwrap(), &["regular file"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn weights_holding_nan_are_refused_naming_the_tensor() {
    // The real Lite0 weights with one value of one tensor set to NaN.
    succeeds(&netlens(&["classify", PHOTO])); // fetches the weights if they are missing
    let home = std::env::var_os("NETLENS_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/netlens"));
    let mut bytes = std::fs::read(home.join("weights/efficientnet_lite0.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let name = "_fc.weight";
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize + 8 + len + 4 * 7;
    bytes[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let dir = scratch("weights");
    let file = dir.join("lite0-corrupt.safetensors");
    put(&file, &bytes);
    let o = netlens(&["classify", "--weights", s(&file), PHOTO]);
    fails_with(&o, &["'_fc.weight' holds NaN"]);
    bytes[start..start + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    put(&file, &bytes);
    let o = netlens(&["classify", "--weights", s(&file), PHOTO]);
    fails_with(&o, &["'_fc.weight' holds inf"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn visualize_encodes_by_extension_or_refuses() {
    let dir = scratch("ext");
    let jpg = dir.join("g.jpg");
    let base = [
        "visualize",
        "--model",
        MODEL,
        "-c",
        "gorilla",
        "--iterations",
        "2",
        "-o",
    ];
    let mut args = base.to_vec();
    args.push(s(&jpg));
    succeeds(&netlens(&args));
    let bytes = std::fs::read(&jpg).unwrap();
    assert_eq!(&bytes[..2], [0xFF, 0xD8], "not a JPEG");
    let gif = dir.join("g.gif");
    let mut args = base.to_vec();
    args.push(s(&gif));
    fails_with(&netlens(&args), &[".png or .jpg"]);
    assert!(!gif.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn numeric_flags_are_range_checked_by_name() {
    let ig = [
        "saliency",
        "--model",
        MODEL,
        "--method",
        "integrated-gradients",
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [
                &ig[..],
                &["--baseline", "blur", "--blur-sigma", "1e9", PHOTO],
            ]
            .concat(),
            "--blur-sigma",
        ),
        (
            vec!["locate", "--model", MODEL, "--smooth", "1e9", PHOTO],
            "--smooth",
        ),
        (
            vec!["locate-bench", "--model", MODEL, "--smooth", "1e9"],
            "--smooth",
        ),
        (
            vec!["locate-bench", "--model", MODEL, "--tolerance", "NaN"],
            "--tolerance",
        ),
        (
            vec!["locate-bench", "--model", MODEL, "--tolerance", "-1"],
            "--tolerance",
        ),
        (
            vec!["locate-bench", "--model", MODEL, "--tolerance", "inf"],
            "--tolerance",
        ),
        (vec!["--threads", "100000", "labels", "1"], "--threads"),
        (
            vec![
                "fool", "--model", MODEL, "--method", "fgsm", "-e", "300", "-t", "6", PHOTO,
            ],
            "--epsilon",
        ),
        (
            vec![
                "fool", "--model", MODEL, "--method", "pgd", "--norm", "l2", "-e", "0", "-t", "6",
                PHOTO,
            ],
            "--epsilon",
        ),
        (vec!["labels", "--", "-1"], "out of range"),
        (
            vec!["robustness", "--model", MODEL, "--epsilons", "300", PHOTO],
            "--epsilons",
        ),
        (
            vec!["robustness", "--model", MODEL, "--sigmas", "1e6", PHOTO],
            "--sigmas",
        ),
        (vec!["bench", "--budget", "NaN"], "--budget"),
        (vec!["bench", "--rounds", "0"], "--rounds"),
        (
            vec!["saliency", "--method", "occlusion", "--window", "0", PHOTO],
            "--window",
        ),
        (
            vec![
                "saliency",
                "--method",
                "occlusion",
                "--stride",
                "9999",
                PHOTO,
            ],
            "--stride",
        ),
        (
            vec!["saliency", "--method", "occlusion", "--fill", "NaN", PHOTO],
            "--fill",
        ),
        // In range, but larger than the model's 224-pixel input: refused when it runs.
        (
            vec![
                "saliency",
                "--model",
                MODEL,
                "--method",
                "occlusion",
                "--window",
                "300",
                PHOTO,
            ],
            "--window",
        ),
        (
            vec!["saliency", "--method", "rise", "--masks", "0", PHOTO],
            "--masks",
        ),
        (
            vec!["saliency", "--method", "rise", "--cell", "65", PHOTO],
            "--cell",
        ),
        (
            vec!["saliency", "--method", "rise", "--p", "0", PHOTO],
            "--p",
        ),
        (
            vec!["saliency", "--method", "rise", "--p", "1.5", PHOTO],
            "--p",
        ),
        (
            vec![
                "visualize",
                "--model",
                MODEL,
                "-c",
                "1",
                "--blur-sigma",
                "1e9",
            ],
            "--blur-sigma",
        ),
    ];
    for (args, needle) in cases {
        let o = netlens(&args);
        let err = stderr(&o);
        assert!(
            !o.status.success() && o.status.code().is_some(),
            "netlens {}: expected a clean refusal; stderr: {err}",
            args.join(" ")
        );
        assert!(
            err.contains(needle),
            "netlens {}: stderr lacks {needle}: {err}",
            args.join(" ")
        );
        assert!(!err.contains("step-size"), "{err}");
    }
}

#[test]
fn outputs_are_never_named_with_replacement_characters() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch("utf8");
    // "café.png" in Latin-1: not UTF-8.
    let photo = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"));
    put(&photo, &std::fs::read(root().join(PHOTO)).unwrap());
    let out = dir.join("maps");
    let o = command("", &["saliency", "--model", MODEL, "-o", s(&out)])
        .arg(&photo)
        .output()
        .unwrap();
    fails_with(&o, &["not UTF-8"]);
    assert!(!out.exists() || leftovers(&out).is_empty());
    assert!(
        !out.join("caf\u{FFFD}.png").exists(),
        "an output was named with U+FFFD"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_png_cut_short_after_its_pixels_decodes_with_a_warning() {
    let dir = scratch("truncated-png");
    let whole = std::fs::read(root().join(PHOTO)).unwrap();
    let cut = dir.join("cut.png");
    put(&cut, &whole[..whole.len() - 1]);
    let o = netlens(&["classify", "--model", MODEL, "--top", "1", s(&cut)]);
    succeeds(&o);
    let err = stderr(&o);
    assert!(
        err.contains("warning") && err.contains("ends early"),
        "{err}"
    );
    // The whole file decodes without one.
    let o = netlens(&["classify", "--model", MODEL, "--top", "1", PHOTO]);
    succeeds(&o);
    assert!(!stderr(&o).contains("ends early"));
}

/// The `shape` of a `.npy` file's header.
fn npy_shape(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no shape in {header}"));
    shape
        .split(',')
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().parse().unwrap())
        .collect()
}

#[test]
fn saliency_maps_come_at_the_photos_own_size_on_request() {
    let dir = scratch("map-size");
    let (input, original) = (dir.join("input"), dir.join("original"));
    for (out, size) in [(&input, "input"), (&original, "original")] {
        let o = netlens(&[
            "saliency",
            "--model",
            MODEL,
            "--map-size",
            size,
            "--out",
            s(out),
            PHOTO,
        ]);
        succeeds(&o);
    }
    // The tiny model sees a 64×64 crop; chelsea is 451×300.
    assert_eq!(npy_shape(&input.join("chelsea.npy")), [64, 64]);
    assert_eq!(npy_shape(&original.join("chelsea.npy")), [300, 451]);
    let o = netlens(&["saliency", "--model", MODEL, "--map-size", "huge", PHOTO]);
    fails_with(&o, &["--map-size"]);
}
