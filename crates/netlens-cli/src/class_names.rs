//! What a model's classes are called: ImageNet's names for a 1000-class model without
//! `--labels`, the lines of a `--labels` file, or `class N`. Every command prints, writes JSON
//! and resolves `--target` / `--class` through [`ClassNames`].

use anyhow::{Context, Result};
use netlens::labels;
use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

/// Largest `--labels` file netlens reads (ImageNet-21k's names take about 1 MiB).
pub const MAX_LABELS_BYTES: u64 = 16 << 20;

/// The names of one model's classes.
#[derive(Debug, Clone)]
pub struct ClassNames {
    /// The model, for error messages.
    model: String,
    /// Number of classes (the logits' width).
    count: usize,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// ImageNet-1k: names, synonyms and WordNet ids from `netlens::labels`.
    ImageNet,
    /// One name per class, from a `--labels` file.
    File { path: String, names: Vec<String> },
    /// No names: `class N`.
    Numbered,
}

impl ClassNames {
    /// ImageNet's 1000 classes, as every zoo model has them.
    pub fn imagenet(model: &str) -> Self {
        ClassNames {
            model: model.to_string(),
            count: labels::NUM_CLASSES,
            kind: Kind::ImageNet,
        }
    }

    /// The names of a model with `count` classes: the `labels` file's if given (read with
    /// [`read_labels`]; its length must be `count`), else ImageNet's for 1000 classes, else
    /// `class N`.
    pub fn new(model: &str, count: usize, labels: Option<(&Path, Vec<String>)>) -> Result<Self> {
        let kind = match labels {
            Some((path, names)) => {
                if names.len() != count {
                    anyhow::bail!(
                        "--labels: {} has {} class name{}, but {model} has {count} classes (one \
                         name per line, in the order of the model's outputs)",
                        path.display(),
                        names.len(),
                        if names.len() == 1 { "" } else { "s" }
                    );
                }
                Kind::File {
                    path: path.display().to_string(),
                    names,
                }
            }
            None if count == labels::NUM_CLASSES => Kind::ImageNet,
            None => Kind::Numbered,
        };
        Ok(ClassNames {
            model: model.to_string(),
            count,
            kind,
        })
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether these are ImageNet's classes (a 1000-class model without `--labels`).
    pub fn is_imagenet(&self) -> bool {
        matches!(self.kind, Kind::ImageNet)
    }

    /// The display name of class `i`.
    pub fn label(&self, i: usize) -> Cow<'_, str> {
        match &self.kind {
            Kind::ImageNet => Cow::Borrowed(labels::label(i)),
            Kind::File { names, .. } => names
                .get(i)
                .map(|s| Cow::Borrowed(s.as_str()))
                .unwrap_or(Cow::Borrowed("?")),
            Kind::Numbered => Cow::Owned(format!("class {i}")),
        }
    }

    /// Resolves a user's class: an index always; a name from the labels file; for ImageNet
    /// models any ImageNet synonym or WordNet id; for unnamed classes `class N`.
    pub fn resolve(&self, query: &str) -> Result<usize> {
        let q = query.trim();
        if q.is_empty() {
            anyhow::bail!("empty class name");
        }
        if let Ok(i) = q.parse::<usize>() {
            return self.check_index(i);
        }
        if q.parse::<i64>().is_ok() {
            anyhow::bail!(
                "class index {q} is out of range: {} has classes 0..{}",
                self.model,
                self.count.saturating_sub(1)
            );
        }
        match &self.kind {
            Kind::ImageNet => Ok(labels::resolve(q)?),
            Kind::File { path, names } => {
                let want = normalize(q);
                let hits: Vec<usize> = names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| normalize(n) == want)
                    .map(|(i, _)| i)
                    .collect();
                match hits.as_slice() {
                    [i] => Ok(*i),
                    [] => {
                        let close: Vec<String> = names
                            .iter()
                            .enumerate()
                            .filter(|(_, n)| {
                                let n = normalize(n);
                                n.contains(&want) || want.contains(&n)
                            })
                            .take(5)
                            .map(|(i, n)| format!("{i} \"{n}\""))
                            .collect();
                        let hint = if close.is_empty() {
                            String::new()
                        } else {
                            format!("; close: {}", close.join(", "))
                        };
                        anyhow::bail!(
                            "unknown class '{q}': not a line of {path} (give a name from it or \
                             an index 0..{}){hint}",
                            self.count.saturating_sub(1)
                        )
                    }
                    many => anyhow::bail!(
                        "class name '{q}' is ambiguous: {path} has it at indices {}; give the \
                         index",
                        many.iter()
                            .map(|i| i.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
            Kind::Numbered => {
                let n = q
                    .to_lowercase()
                    .strip_prefix("class")
                    .and_then(|r| r.trim().parse::<usize>().ok());
                match n {
                    Some(i) => self.check_index(i),
                    None => anyhow::bail!(
                        "unknown class '{q}': {} has {} unnamed classes; give an index 0..{} \
                         or name them with --labels FILE",
                        self.model,
                        self.count,
                        self.count.saturating_sub(1)
                    ),
                }
            }
        }
    }

    fn check_index(&self, i: usize) -> Result<usize> {
        if i < self.count {
            Ok(i)
        } else {
            anyhow::bail!(
                "class index {i} is out of range: {} has classes 0..{}",
                self.model,
                self.count.saturating_sub(1)
            )
        }
    }
}

/// Case-insensitive, whitespace-collapsed form of a name.
fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Reads a `--labels` file: UTF-8 text, one class name per line (surrounding whitespace and a
/// byte-order mark ignored, trailing blank lines ignored), a regular file of at most
/// [`MAX_LABELS_BYTES`].
pub fn read_labels(path: &Path) -> Result<Vec<String>> {
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("--labels: cannot read {shown}"))?;
    if !meta.is_file() {
        anyhow::bail!("--labels: {shown} is not a regular file");
    }
    let too_big = || {
        anyhow::anyhow!(
            "--labels: {shown} is larger than {} MiB; a labels file has one class name per line",
            MAX_LABELS_BYTES >> 20
        )
    };
    if meta.len() > MAX_LABELS_BYTES {
        return Err(too_big());
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_LABELS_BYTES + 1).read_to_end(&mut buf))
        .with_context(|| format!("--labels: cannot read {shown}"))?;
    if buf.len() as u64 > MAX_LABELS_BYTES {
        return Err(too_big());
    }
    let text = String::from_utf8(buf)
        .map_err(|_| anyhow::anyhow!("--labels: {shown} is not UTF-8 text"))?;
    parse_labels(&text).with_context(|| format!("--labels: {shown}"))
}

/// The class names of a labels file's text.
fn parse_labels(text: &str) -> Result<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    while lines.last() == Some(&"") {
        lines.pop();
    }
    if lines.is_empty() {
        anyhow::bail!("no class names (one per line)");
    }
    for (i, l) in lines.iter().enumerate() {
        if l.is_empty() {
            anyhow::bail!("line {} is empty; give one class name per line", i + 1);
        }
        if l.chars().any(char::is_control) {
            anyhow::bail!("line {} holds control characters", i + 1);
        }
    }
    Ok(lines.into_iter().map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(names: &[&str]) -> ClassNames {
        ClassNames::new(
            "m.onnx",
            names.len(),
            Some((
                Path::new("labels.txt"),
                names.iter().map(|s| s.to_string()).collect(),
            )),
        )
        .unwrap()
    }

    #[test]
    fn imagenet_by_default_for_1000_classes() {
        let n = ClassNames::new("m.onnx", 1000, None).unwrap();
        assert!(n.is_imagenet());
        assert_eq!(n.resolve("tiger cat").unwrap(), 282);
        assert_eq!(n.resolve("366").unwrap(), 366);
        assert_eq!(n.label(366), "gorilla");
        let e = n.resolve("1000").unwrap_err().to_string();
        assert!(e.contains("0..999"), "{e}");
    }

    #[test]
    fn numbered_without_labels() {
        let n = ClassNames::new("m.onnx", 10, None).unwrap();
        assert!(!n.is_imagenet());
        assert_eq!(n.label(3), "class 3");
        assert_eq!(n.resolve("3").unwrap(), 3);
        assert_eq!(n.resolve("class 4").unwrap(), 4);
        let e = n.resolve("10").unwrap_err().to_string();
        assert!(e.contains("0..9") && e.contains("m.onnx"), "{e}");
        let e = n.resolve("-1").unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
        let e = n.resolve("gorilla").unwrap_err().to_string();
        assert!(e.contains("--labels"), "{e}");
    }

    #[test]
    fn names_from_a_file() {
        let n = file(&["cat", "Dog", "hot dog", "cat"]);
        assert_eq!(n.label(1), "Dog");
        assert_eq!(n.resolve("dog").unwrap(), 1);
        assert_eq!(n.resolve("  HOT   dog ").unwrap(), 2);
        assert_eq!(n.resolve("2").unwrap(), 2);
        let e = n.resolve("cat").unwrap_err().to_string();
        assert!(e.contains("ambiguous") && e.contains("0, 3"), "{e}");
        let e = n.resolve("hot").unwrap_err().to_string();
        assert!(e.contains("hot dog"), "{e}");
        // ImageNet synonyms are not names of this model.
        assert!(n.resolve("gorilla").is_err());
        assert!(
            ClassNames::new("m.onnx", 5, Some((Path::new("l.txt"), vec!["a".into()])))
                .unwrap_err()
                .to_string()
                .contains("1 class name, but m.onnx has 5 classes")
        );
    }

    #[test]
    fn parsing_labels() {
        assert_eq!(
            parse_labels("\u{feff}a\r\n b \n\n\n").unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(parse_labels("a\n\nb\n").is_err());
        assert!(parse_labels("\n\n").is_err());
        assert!(parse_labels("a\x1b[31m\n").is_err());
    }
}
