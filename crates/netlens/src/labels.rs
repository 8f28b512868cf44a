//! ImageNet-1k class names, embedded, with lookup by index or by any synonym.
//!
//! The names are WordNet lemmas of the 1000 ILSVRC-2012 synsets in the standard class order
//! (from timm's `imagenet_synset_to_lemma.txt`). A class is named by its index ("282"), by any
//! of its comma-separated synonyms, case-insensitively ("tiger cat", "Tinca tinca"), or by its
//! WordNet id ("n02123159"). A name shared by several classes ("crane") is an error that
//! lists them; an unknown name suggests the closest ones.

use crate::error::{Error, Result};
use std::sync::OnceLock;

const TABLE: &str = include_str!("labels/imagenet1k.tsv");

/// Number of ImageNet-1k classes.
pub const NUM_CLASSES: usize = 1000;

/// One ImageNet class.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    /// Index in the 1000-way output.
    pub index: usize,
    /// WordNet synset id, e.g. `n02123159`.
    pub wnid: &'static str,
    /// All synonyms, first one is the display label.
    pub synonyms: Vec<&'static str>,
}

impl ClassInfo {
    /// The short display label (the first synonym), e.g. "tiger cat".
    pub fn label(&self) -> &'static str {
        self.synonyms[0]
    }
}

fn table() -> &'static [ClassInfo] {
    static CLASSES: OnceLock<Vec<ClassInfo>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(index, line)| {
                let (wnid, names) = line.split_once('\t').unwrap_or((line, line));
                ClassInfo {
                    index,
                    wnid,
                    synonyms: names.split(", ").map(str::trim).collect(),
                }
            })
            .collect()
    })
}

/// All classes in index order.
pub fn classes() -> &'static [ClassInfo] {
    table()
}

/// The display label of class `index` ("?" for an index out of range).
pub fn label(index: usize) -> &'static str {
    table().get(index).map(ClassInfo::label).unwrap_or("?")
}

/// Resolves a user's class: an index, a WordNet id or any synonym (case-insensitive).
pub fn resolve(query: &str) -> Result<usize> {
    let q = query.trim();
    if q.is_empty() {
        return Err(Error::Class("empty class name".into()));
    }
    if let Ok(i) = q.parse::<usize>() {
        return if i < NUM_CLASSES {
            Ok(i)
        } else {
            Err(Error::Class(format!(
                "class index {i} is out of range: ImageNet classes are 0..{}",
                NUM_CLASSES - 1
            )))
        };
    }
    let ql = normalize(q);
    let hits: Vec<&ClassInfo> = table()
        .iter()
        .filter(|c| c.wnid == q || c.synonyms.iter().any(|s| normalize(s) == ql))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.index),
        [] => Err(Error::Class(format!(
            "unknown class '{q}'; closest names: {}",
            suggestions(&ql, 5).join(", ")
        ))),
        many => Err(Error::Class(format!(
            "class name '{q}' is ambiguous; use an index: {}",
            many.iter()
                .map(|c| format!("{} ({})", c.index, c.synonyms.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

fn normalize(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `n` synonyms closest to `query` (normalized Levenshtein), formatted "name (index)".
fn suggestions(query: &str, n: usize) -> Vec<String> {
    let mut scored: Vec<(f64, String)> = table()
        .iter()
        .flat_map(|c| {
            c.synonyms.iter().map(move |s| {
                let d = strsim::normalized_levenshtein(query, &normalize(s));
                let bonus = if normalize(s).contains(query) {
                    0.5
                } else {
                    0.0
                };
                (d + bonus, format!("'{}' ({})", s, c.index))
            })
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(n).map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(classes().len(), NUM_CLASSES);
        assert_eq!(resolve("282").unwrap(), 282);
        assert_eq!(resolve("tiger cat").unwrap(), 282);
        assert_eq!(resolve("Tinca tinca").unwrap(), 0);
        assert_eq!(resolve("STINGRAY").unwrap(), 6);
        assert_eq!(resolve("n02480855").unwrap(), 366);
        assert_eq!(label(366), "gorilla");
        assert_eq!(label(985), "daisy");
    }

    #[test]
    fn ambiguous_and_unknown() {
        let e = resolve("crane").unwrap_err().to_string();
        assert!(
            e.contains("ambiguous") && e.contains("134") && e.contains("517"),
            "{e}"
        );
        let e = resolve("gorila").unwrap_err().to_string();
        assert!(e.contains("gorilla"), "{e}");
        assert!(resolve("1000").is_err());
    }
}
