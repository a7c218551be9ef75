//! `instance install DIR`: the init container's job, copying this very binary into the Pod's
//! shared volume, where the postgres container (another image) runs it.

use std::path::Path;

use anyhow::{Context, Result};

/// The file name the postgres container runs.
pub const BINARY: &str = "instance-manager";

pub fn install(dir: &Path) -> Result<()> {
    let me = std::env::current_exe().context("finding this binary")?;
    let target = dir.join(BINARY);
    // Copy to a temporary name and rename: a container restart never runs half a binary.
    let partial = dir.join(format!("{BINARY}.partial"));
    std::fs::copy(&me, &partial)
        .with_context(|| format!("copying {} to {}", me.display(), partial.display()))?;
    std::fs::rename(&partial, &target)
        .with_context(|| format!("renaming {} to {}", partial.display(), target.display()))?;
    println!("installed the instance manager as {}", target.display());
    Ok(())
}
