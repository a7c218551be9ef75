//! What `pg_basebackup --verbose` says about where the backup sits in the WAL.

use crate::wal::{Lsn, Timeline};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPoints {
    pub start: Lsn,
    pub timeline: Timeline,
    pub end: Lsn,
}

/// Reads `write-ahead log start point: 0/2000028 on timeline 1` and
/// `write-ahead log end point: 0/2000100` from pg_basebackup's stderr.
pub fn wal_points(stderr: &str) -> Result<WalPoints, String> {
    let mut start = None;
    let mut end = None;
    for line in stderr.lines() {
        if let Some(rest) = line.split("write-ahead log start point: ").nth(1) {
            let mut words = rest.split_whitespace();
            let lsn = words.next().and_then(|w| w.parse::<Lsn>().ok());
            let timeline = words
                .skip_while(|w| *w != "timeline")
                .nth(1)
                .and_then(|w| w.parse::<u32>().ok())
                .and_then(|id| Timeline::new(id).ok());
            start = lsn.zip(timeline);
        } else if let Some(rest) = line.split("write-ahead log end point: ").nth(1) {
            end = rest
                .split_whitespace()
                .next()
                .and_then(|w| w.parse::<Lsn>().ok());
        }
    }
    match (start, end) {
        (Some((start, timeline)), Some(end)) => Ok(WalPoints {
            start,
            timeline,
            end,
        }),
        _ => Err(format!(
            "pg_basebackup did not report its WAL start and end points: {stderr}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_end_and_timeline_are_read() {
        let stderr = "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n\
            pg_basebackup: checkpoint completed\n\
            pg_basebackup: write-ahead log start point: 0/2000028 on timeline 3\n\
            pg_basebackup: write-ahead log end point: 0/2000158\n\
            pg_basebackup: base backup completed\n";
        let points = wal_points(stderr).unwrap();
        assert_eq!(points.start, Lsn(0x2000028));
        assert_eq!(points.end, Lsn(0x2000158));
        assert_eq!(points.timeline, Timeline::new(3).unwrap());
    }

    #[test]
    fn missing_points_are_an_error_quoting_the_output() {
        let error = wal_points("pg_basebackup: error: oops").unwrap_err();
        assert!(error.contains("oops"), "{error}");
    }
}
