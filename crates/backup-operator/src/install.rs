//! `install DIR`: a drill's init container copies this binary into an emptyDir, where the
//! container running the Database's PostgreSQL image (which has the server programs but not
//! this binary) runs it.

use std::path::{Path, PathBuf};

/// The file name the drill container runs.
pub const BINARY: &str = "backup-operator";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot find this binary")]
    Locate(#[source] std::io::Error),
    #[error("cannot copy {from} to {to}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Copies under a temporary name and renames, so a restarted container never runs half a
/// binary. Returns the installed path.
pub fn install(dir: &Path) -> Result<PathBuf, InstallError> {
    let me = std::env::current_exe().map_err(InstallError::Locate)?;
    let target = dir.join(BINARY);
    let partial = dir.join(format!("{BINARY}.partial"));
    let copy_error = |to: &Path| {
        let (from, to) = (me.clone(), to.to_owned());
        move |source| InstallError::Copy { from, to, source }
    };
    std::fs::copy(&me, &partial).map_err(copy_error(&partial))?;
    std::fs::rename(&partial, &target).map_err(copy_error(&target))?;
    Ok(target)
}
