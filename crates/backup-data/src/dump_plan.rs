//! What one dump will be, decided before pg_dump starts: compression, jobs and therefore
//! format. Pure; the versions come from the server and from pg_dump.

use crate::compression::{self, Compression, CompressionError};
use crate::pg::{DumpOutput, PgVersion};
use crate::storage::manifest::{DumpFormat, FORMAT_PG_DUMP_CUSTOM, FORMAT_PG_DUMP_DIRECTORY_TAR};
use std::path::Path;

/// The most pg_dump and pg_restore jobs a Backup may ask for; each is a connection.
pub const MAX_JOBS: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPlan {
    pub compression: Compression,
    /// Why `compression` is not the default, when it fell back.
    pub note: Option<String>,
    pub jobs: u32,
    pub pg_dump: PgVersion,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("jobs must be between 1 and {MAX_JOBS}, not {0}")]
    Jobs(u32),

    #[error(transparent)]
    Compression(#[from] CompressionError),
}

pub fn plan(
    requested: Option<Compression>,
    jobs: u32,
    pg_dump: PgVersion,
    server: &PgVersion,
) -> Result<DumpPlan, PlanError> {
    if !(1..=MAX_JOBS).contains(&jobs) {
        return Err(PlanError::Jobs(jobs));
    }
    let choice = compression::choose(requested, &pg_dump, server)?;
    Ok(DumpPlan {
        compression: choice.compression,
        note: choice.note,
        jobs,
        pg_dump,
    })
}

impl DumpPlan {
    /// One job streams the custom format; more need the directory format, packed.
    pub fn format(&self) -> &'static str {
        if self.jobs > 1 {
            FORMAT_PG_DUMP_DIRECTORY_TAR
        } else {
            FORMAT_PG_DUMP_CUSTOM
        }
    }

    /// Where pg_dump writes; `scratch` is used only by the directory format.
    pub fn output<'a>(&self, scratch: &'a Path) -> DumpOutput<'a> {
        if self.jobs > 1 {
            DumpOutput::Directory {
                path: scratch,
                jobs: self.jobs,
            }
        } else {
            DumpOutput::Stdout
        }
    }

    /// What the manifest records about the artifact.
    pub fn record(&self) -> DumpFormat {
        DumpFormat {
            format: self.format(),
            compression: self.compression,
            compression_note: self.note.clone(),
            jobs: self.jobs,
            pg_dump_version: self.pg_dump.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32) -> PgVersion {
        PgVersion { major, minor: 1 }
    }

    #[test]
    fn jobs_choose_the_format() {
        let one = plan(None, 1, v(17), &v(17)).unwrap();
        assert_eq!(one.format(), FORMAT_PG_DUMP_CUSTOM);
        assert_eq!(one.output(Path::new("/s")), DumpOutput::Stdout);
        let four = plan(None, 4, v(17), &v(17)).unwrap();
        assert_eq!(four.format(), FORMAT_PG_DUMP_DIRECTORY_TAR);
        assert_eq!(
            four.output(Path::new("/s")),
            DumpOutput::Directory {
                path: Path::new("/s"),
                jobs: 4
            }
        );
    }

    #[test]
    fn the_record_names_what_wrote_the_artifact() {
        let record = plan(None, 2, v(17), &v(15)).unwrap().record();
        assert_eq!(record.format, FORMAT_PG_DUMP_DIRECTORY_TAR);
        assert_eq!(record.compression, Compression::FALLBACK);
        assert!(record.compression_note.is_some());
        assert_eq!((record.jobs, record.pg_dump_version.as_str()), (2, "17.1"));
    }

    #[test]
    fn jobs_out_of_range_are_refused() {
        for jobs in [0, MAX_JOBS + 1] {
            assert_eq!(plan(None, jobs, v(17), &v(17)), Err(PlanError::Jobs(jobs)));
        }
    }
}
