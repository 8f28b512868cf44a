//! `netlens labels`: look up ImageNet classes by index or name.

use anyhow::Result;
use netlens::labels;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Class indices or names to resolve (any synonym, case-insensitive); none lists all
    #[arg(value_name = "CLASS")]
    pub queries: Vec<String>,
    /// Print JSON lines instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let classes: Vec<usize> = if a.queries.is_empty() {
        (0..labels::NUM_CLASSES).collect()
    } else {
        a.queries
            .iter()
            .map(|q| {
                // A number, even a negative or huge one, is an index: say it is out of range.
                let t = q.trim();
                let digits = t.strip_prefix('-').unwrap_or(t);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    let ok = !t.starts_with('-')
                        && t.parse::<usize>().is_ok_and(|i| i < labels::NUM_CLASSES);
                    if !ok {
                        anyhow::bail!(
                            "class index {t} is out of range 0..{}",
                            labels::NUM_CLASSES - 1
                        );
                    }
                }
                Ok(labels::resolve(q)?)
            })
            .collect::<Result<_>>()?
    };
    for c in classes {
        let info = &labels::classes()[c];
        if a.json {
            let v = serde_json::json!({"class": c, "label": info.label(), "wnid": info.wnid, "synonyms": info.synonyms});
            println!("{v}");
        } else {
            println!("{:>4}  {}  {}", c, info.wnid, info.synonyms.join(", "));
        }
    }
    Ok(())
}
