//! `netlens bench`: placeholder replaced below.
use anyhow::Result;
#[derive(clap::Args, Debug)]
pub struct Args {}
pub fn run(_a: Args) -> Result<()> {
    Ok(())
}
