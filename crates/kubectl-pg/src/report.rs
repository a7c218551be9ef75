//! `kubectl pg report DATABASE`: a support bundle in one .tar.gz: the Database and what
//! belongs to it as YAML, the status screen, Events, the operators' log lines about it and the
//! tails of its Pods' logs.
//!
//! No Secret value leaves the cluster: Secrets are listed with every value replaced by
//! `REDACTED`, and every file of the bundle is scrubbed of each value the Secrets hold
//! before it is written, so a password echoed into a log is caught too.

mod collect;
mod redact;

use std::path::PathBuf;
use std::process::ExitCode;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::cli::Target;
use crate::failure::Failure;

/// One file of the bundle.
pub struct Entry {
    pub path: String,
    pub text: String,
}

pub async fn run(
    target: &Target,
    database: &str,
    output: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let now = chrono::Utc::now();
    let bundle = collect::collect(target, database, now).await?;
    let root = format!("pg-report-{}-{database}", target.namespace);
    let path = output.unwrap_or_else(|| {
        PathBuf::from(format!("{root}-{}.tar.gz", now.format("%Y%m%dT%H%M%SZ")))
    });
    let entries = redact::scrub(bundle.entries, &bundle.secret_values);
    write_archive(&path, &root, &entries)?;
    println!(
        "Wrote {} ({} files; Secret values redacted).",
        path.display(),
        entries.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_archive(path: &std::path::Path, root: &str, entries: &[Entry]) -> Result<(), Failure> {
    let failed = |e: std::io::Error| Failure::new(format!("cannot write {}: {e}", path.display()));
    let file = std::fs::File::create(path).map_err(failed)?;
    let mut archive = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    let mtime = chrono::Utc::now().timestamp().max(0) as u64;
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(entry.text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_cksum();
        archive
            .append_data(
                &mut header,
                format!("{root}/{}", entry.path),
                entry.text.as_bytes(),
            )
            .map_err(failed)?;
    }
    archive
        .into_inner()
        .and_then(|gz| gz.finish())
        .map_err(failed)?;
    Ok(())
}
