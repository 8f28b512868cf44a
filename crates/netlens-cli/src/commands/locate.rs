//! `netlens locate` (placeholder until its issue lands).

use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: Args) -> Result<()> {
    anyhow::bail!("this command is not implemented yet")
}
