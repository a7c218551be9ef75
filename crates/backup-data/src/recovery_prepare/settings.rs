//! The recovery settings written into the prepared data directory.

use crate::wal::Timeline;
use chrono::{DateTime, Utc};

/// Where the prepared WAL files go, inside the data directory.
pub const WAL_DIR: &str = "pgop_wal";

/// Lines appended to `postgresql.auto.conf`. `restore_command` only copies files already
/// fetched and verified; it runs in the data directory, so the path is relative and the
/// volume may be mounted anywhere. The timeline is given by number: "latest" could pick a
/// branch the base backup is not on.
pub fn auto_conf(timeline: Timeline, target: Option<DateTime<Utc>>) -> String {
    let mut text = format!(
        "\n# Point-in-time recovery prepared by the backup-operator\n\
         restore_command = 'cp \"{WAL_DIR}/%f\" \"%p\"'\n\
         recovery_target_timeline = '{timeline}'\n"
    );
    if let Some(target) = target {
        text.push_str(&format!(
            "recovery_target_time = '{}'\nrecovery_target_inclusive = on\nrecovery_target_action = 'promote'\n",
            target.format("%Y-%m-%d %H:%M:%S%.6f+00")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn target_time_timeline_and_promotion_are_set() {
        let target = Utc.with_ymd_and_hms(2026, 12, 6, 7, 0, 1).unwrap();
        let text = auto_conf(Timeline::new(2).unwrap(), Some(target));
        assert!(
            text.contains("restore_command = 'cp \"pgop_wal/%f\" \"%p\"'"),
            "{text}"
        );
        assert!(text.contains("recovery_target_timeline = '2'"), "{text}");
        assert!(
            text.contains("recovery_target_time = '2026-12-06 07:00:01.000000+00'"),
            "{text}"
        );
        assert!(
            text.contains("recovery_target_action = 'promote'"),
            "{text}"
        );
        let to_end = auto_conf(Timeline::FIRST, None);
        assert!(!to_end.contains("recovery_target_time ="), "{to_end}");
    }
}
