//! The command lines of pg_dump and pg_restore, built from what a run decided. Pure, so the
//! combinations are tested without starting either program.

use crate::compression::Compression;
use std::ffi::OsString;
use std::path::Path;

/// Where pg_dump writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpOutput<'a> {
    /// The custom format on stdout, streamed to storage as it is written; one job.
    Stdout,
    /// The directory format, the only one pg_dump writes with several jobs, into an empty
    /// local directory.
    Directory { path: &'a Path, jobs: u32 },
}

/// Arguments after the program name; the connection is in the environment.
pub fn pg_dump_args(
    compression: &Compression,
    client_major: u32,
    output: DumpOutput<'_>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    match output {
        DumpOutput::Stdout => args.push("--format=custom".into()),
        DumpOutput::Directory { path, jobs } => {
            args.push("--format=directory".into());
            args.push(format!("--jobs={jobs}").into());
            let mut file = OsString::from("--file=");
            file.push(path);
            args.push(file);
        }
    }
    args.push(compression.pg_dump_arg(client_major).into());
    args.push("--no-password".into());
    args
}

/// Arguments of a pg_restore of `input` (a custom-format file or a directory, which
/// pg_restore tells apart itself) into the database `dbname_conninfo` names, replacing
/// the objects the dump contains.
pub fn pg_restore_args(
    jobs: u32,
    privileges: bool,
    dbname_conninfo: &str,
    input: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--clean", "--if-exists", "--no-owner", "--no-password"]
        .into_iter()
        .map(OsString::from)
        .collect();
    if !privileges {
        args.push("--no-privileges".into());
    }
    if jobs > 1 {
        // pg_restore cannot run several jobs in one transaction; a failed parallel restore
        // is repaired by running it again (--clean replaces what it restored).
        args.push(format!("--jobs={jobs}").into());
    } else {
        // All or nothing: a restore that fails halfway rolls back and leaves the target as
        // it was, instead of half old, half new.
        args.push("--single-transaction".into());
    }
    args.push(format!("--dbname={dbname_conninfo}").into());
    args.push(input.into());
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr as _;

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect()
    }

    #[test]
    fn one_job_streams_the_custom_format() {
        let args = pg_dump_args(&Compression::DEFAULT, 17, DumpOutput::Stdout);
        assert_eq!(
            strings(args),
            ["--format=custom", "--compress=zstd:1", "--no-password"]
        );
    }

    #[test]
    fn several_jobs_write_the_directory_format() {
        let lz4 = Compression::from_str("lz4:3").unwrap();
        let output = DumpOutput::Directory {
            path: Path::new("/tmp/scratch/dump"),
            jobs: 4,
        };
        assert_eq!(
            strings(pg_dump_args(&lz4, 17, output)),
            [
                "--format=directory",
                "--jobs=4",
                "--file=/tmp/scratch/dump",
                "--compress=lz4:3",
                "--no-password"
            ]
        );
    }

    #[test]
    fn restore_is_one_transaction_only_with_one_job() {
        let single = strings(pg_restore_args(
            1,
            true,
            "dbname='app'",
            Path::new("/tmp/a"),
        ));
        assert!(single.contains(&"--single-transaction".to_string()));
        assert!(!single.iter().any(|arg| arg.starts_with("--jobs")));
        assert_eq!(single.last().map(String::as_str), Some("/tmp/a"));

        let parallel = strings(pg_restore_args(
            3,
            true,
            "dbname='app'",
            Path::new("/tmp/d"),
        ));
        assert!(parallel.contains(&"--jobs=3".to_string()));
        assert!(!parallel.contains(&"--single-transaction".to_string()));
        assert!(parallel.contains(&"--clean".to_string()));
        assert!(parallel.contains(&"--dbname=dbname='app'".to_string()));
    }

    #[test]
    fn privileges_are_left_out_only_when_asked() {
        let with = strings(pg_restore_args(
            1,
            true,
            "dbname='app'",
            Path::new("/tmp/a"),
        ));
        assert!(!with.contains(&"--no-privileges".to_string()));
        let without = strings(pg_restore_args(
            1,
            false,
            "dbname='app'",
            Path::new("/tmp/a"),
        ));
        assert!(without.contains(&"--no-privileges".to_string()));
    }
}
