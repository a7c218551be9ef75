//! Cron schedules for Backups: standard 5-field expressions evaluated in UTC
//! or an IANA time zone, and the decision of which run is due now.
//!
//! Pure functions: the controller passes in the clock, which keeps them
//! testable and the controller's requeue times exact.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "schedule {expression:?} has 6 fields, but seconds are not supported: use the 5 fields \"minute hour day-of-month month day-of-week\", here {suggestion:?}"
    )]
    Seconds {
        expression: String,
        suggestion: String,
    },

    #[error(
        "schedule {expression:?} has {fields} fields; use the 5 fields \"minute hour day-of-month month day-of-week\", e.g. \"0 2 * * *\" for 02:00 every day"
    )]
    FieldCount { expression: String, fields: usize },

    #[error(
        "schedule {expression:?} sets a time zone inside the expression; put {zone:?} in the time zone field instead"
    )]
    InlineTimeZone { expression: String, zone: String },

    #[error("schedule {expression:?} is not a valid cron expression: {reason}")]
    Invalid { expression: String, reason: String },

    #[error(
        "time zone {zone:?} is not an IANA time zone name such as \"Europe/Berlin\" or \"UTC\""
    )]
    UnknownTimeZone { zone: String },
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

impl Schedule {
    /// Parses a 5-field expression (or `@hourly`, `@daily`, `@weekly`,
    /// `@monthly`, `@yearly`), evaluated in `time_zone` (UTC when `None`).
    pub fn parse(expression: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let trimmed = expression.trim();
        check_shape(trimmed)?;
        let zone = match time_zone {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| ScheduleError::UnknownTimeZone {
                zone: name.to_owned(),
            })?,
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(trimmed)
            .map_err(|error| ScheduleError::Invalid {
                expression: expression.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Self { cron, zone })
    }

    /// The first scheduled time strictly after `after`; `None` for a
    /// schedule that never fires again, such as `0 0 30 2 *`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|time| time.with_timezone(&Utc))
    }

    /// The latest scheduled time at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.zone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|time| time.with_timezone(&Utc))
    }
}

/// Refuses shapes that a cron library might accept with another meaning,
/// with a message that shows the fix.
fn check_shape(expression: &str) -> Result<(), ScheduleError> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if let Some(first) = fields.first()
        && let Some(zone) = first
            .strip_prefix("CRON_TZ=")
            .or_else(|| first.strip_prefix("TZ="))
    {
        return Err(ScheduleError::InlineTimeZone {
            expression: expression.to_owned(),
            zone: zone.to_owned(),
        });
    }
    if fields.len() == 1 && fields[0].starts_with('@') {
        return Ok(());
    }
    match fields.len() {
        5 => Ok(()),
        6 => Err(ScheduleError::Seconds {
            expression: expression.to_owned(),
            suggestion: fields[1..].join(" "),
        }),
        count => Err(ScheduleError::FieldCount {
            expression: expression.to_owned(),
            fields: count,
        }),
    }
}

/// What the controller should do for a scheduled Backup now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Start the run scheduled for `scheduled`; record it as the last
    /// schedule time, then wake up at `next`.
    Run {
        scheduled: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    },
    /// The latest scheduled time passed longer ago than the starting
    /// deadline: skip it (record it as missed), then wake up at `next`.
    Missed {
        scheduled: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    },
    /// Nothing is due; wake up at `next`.
    Wait { next: Option<DateTime<Utc>> },
}

/// Decides which run is due at `now`, given `since`: the last scheduled time
/// that was run or skipped, or the Backup's creation time before the first.
///
/// Only the latest scheduled time in `(since, now]` is considered, so an
/// operator that was down across many scheduled times starts one run when
/// it returns, never a burst. With `starting_deadline`, that run is taken only
/// if `now` is at most that long after its scheduled time.
pub fn due(
    schedule: &Schedule,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    starting_deadline: Option<Duration>,
) -> Due {
    let next = schedule.next_after(now);
    let Some(latest) = schedule
        .latest_at_or_before(now)
        .filter(|latest| *latest > since)
    else {
        return Due::Wait {
            next: schedule.next_after(since.max(now)),
        };
    };
    let late_by = (now - latest).to_std().unwrap_or_default();
    match starting_deadline {
        Some(deadline) if late_by > deadline => Due::Missed {
            scheduled: latest,
            next,
        },
        _ => Due::Run {
            scheduled: latest,
            next,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn accepted_expressions_and_their_next_runs() {
        // (expression, time zone, after, the next runs that follow)
        let table: &[(&str, Option<&str>, &str, &[&str])] = &[
            (
                "0 2 * * *",
                None,
                "2025-03-10T01:59:59Z",
                &["2025-03-10T02:00:00Z", "2025-03-11T02:00:00Z"],
            ),
            (
                "0 2 * * *",
                None,
                "2025-03-10T02:00:00Z",
                &["2025-03-11T02:00:00Z"],
            ),
            (
                "*/15 * * * *",
                None,
                "2025-03-10T10:07:00Z",
                &["2025-03-10T10:15:00Z", "2025-03-10T10:30:00Z"],
            ),
            (
                "30 4 1 * *",
                None,
                "2025-01-31T12:00:00Z",
                &["2025-02-01T04:30:00Z", "2025-03-01T04:30:00Z"],
            ),
            // Sunday as 0 and as SUN; 2025-03-09 is a Sunday.
            (
                "0 3 * * 0",
                None,
                "2025-03-05T00:00:00Z",
                &["2025-03-09T03:00:00Z"],
            ),
            (
                "0 3 * * SUN",
                None,
                "2025-03-05T00:00:00Z",
                &["2025-03-09T03:00:00Z"],
            ),
            (
                "0 9 * * 1-5",
                None,
                "2025-03-07T10:00:00Z",
                &["2025-03-10T09:00:00Z", "2025-03-11T09:00:00Z"],
            ),
            (
                "@daily",
                None,
                "2025-03-10T13:00:00Z",
                &["2025-03-11T00:00:00Z"],
            ),
            (
                "@hourly",
                None,
                "2025-03-10T13:00:00Z",
                &["2025-03-10T14:00:00Z"],
            ),
            (
                "  0 2 * * *  ",
                None,
                "2025-03-10T00:00:00Z",
                &["2025-03-10T02:00:00Z"],
            ),
            // 02:00 in Berlin is 01:00 UTC in winter, 00:00 UTC in summer.
            (
                "0 2 * * *",
                Some("Europe/Berlin"),
                "2025-01-10T00:00:00Z",
                &["2025-01-10T01:00:00Z"],
            ),
            (
                "0 2 * * *",
                Some("Europe/Berlin"),
                "2025-07-10T02:00:00Z",
                &["2025-07-11T00:00:00Z"],
            ),
            // On 2025-03-30 Berlin skips 02:00-03:00: the 02:30 run happens at
            // the end of the gap (03:00 CEST) rather than that day having none.
            (
                "30 2 * * *",
                Some("Europe/Berlin"),
                "2025-03-29T12:00:00Z",
                &["2025-03-30T01:00:00Z", "2025-03-31T00:30:00Z"],
            ),
            (
                "0 0 29 2 *",
                None,
                "2025-01-01T00:00:00Z",
                &["2028-02-29T00:00:00Z"],
            ),
        ];
        for (expression, zone, after, expected) in table {
            let schedule = Schedule::parse(expression, *zone)
                .unwrap_or_else(|error| panic!("{expression:?} refused: {error}"));
            let mut time = utc(after);
            for want in *expected {
                time = schedule
                    .next_after(time)
                    .unwrap_or_else(|| panic!("{expression:?} has no run after {time}"));
                assert_eq!(time, utc(want), "{expression:?} in {zone:?}");
            }
        }
    }

    #[test]
    fn refused_expressions_say_why() {
        // (expression, time zone, words the message must contain)
        let table: &[(&str, Option<&str>, &[&str])] = &[
            (
                "0 0 2 * * *",
                None,
                &["seconds are not supported", "\"0 2 * * *\""],
            ),
            ("0 2 * *", None, &["4 fields", "5 fields"]),
            ("0 2 * * * 2025", None, &["seconds are not supported"]),
            ("0 0 2 * * * 2025", None, &["7 fields"]),
            ("", None, &["0 fields"]),
            ("61 2 * * *", None, &["not a valid cron expression"]),
            ("0 25 * * *", None, &["not a valid cron expression"]),
            ("0 2 * * MONDAY", None, &["not a valid cron expression"]),
            (
                "CRON_TZ=Europe/Berlin 0 2 * * *",
                None,
                &["time zone field", "Europe/Berlin"],
            ),
            ("@every 5m", None, &["2 fields"]),
            ("@reboot", None, &["not a valid cron expression"]),
            ("0 2 * * *", Some("Mars/Olympus"), &["Mars/Olympus", "IANA"]),
        ];
        for (expression, zone, words) in table {
            let error = Schedule::parse(expression, *zone)
                .map(|_| ())
                .expect_err(&format!("{expression:?} was accepted"))
                .to_string();
            for word in *words {
                assert!(
                    error.contains(word),
                    "{expression:?}: {error:?} lacks {word:?}"
                );
            }
        }
    }

    fn daily() -> Schedule {
        Schedule::parse("0 2 * * *", None).unwrap()
    }

    #[test]
    fn nothing_is_due_before_the_first_scheduled_time() {
        let created = utc("2025-03-10T01:00:00Z");
        assert_eq!(
            due(&daily(), created, utc("2025-03-10T01:30:00Z"), None),
            Due::Wait {
                next: Some(utc("2025-03-10T02:00:00Z"))
            }
        );
    }

    #[test]
    fn a_scheduled_time_that_just_passed_is_due() {
        let created = utc("2025-03-10T01:00:00Z");
        assert_eq!(
            due(
                &daily(),
                created,
                utc("2025-03-10T02:00:05Z"),
                Some(Duration::from_secs(300))
            ),
            Due::Run {
                scheduled: utc("2025-03-10T02:00:00Z"),
                next: Some(utc("2025-03-11T02:00:00Z"))
            }
        );
    }

    #[test]
    fn a_run_already_taken_is_not_due_again() {
        let last = utc("2025-03-10T02:00:00Z");
        assert_eq!(
            due(&daily(), last, utc("2025-03-10T02:00:30Z"), None),
            Due::Wait {
                next: Some(utc("2025-03-11T02:00:00Z"))
            }
        );
    }

    #[test]
    fn after_a_long_outage_only_the_latest_missed_run_is_taken() {
        let last = utc("2025-03-01T02:00:00Z");
        let now = utc("2025-03-10T02:03:00Z");
        assert_eq!(
            due(&daily(), last, now, Some(Duration::from_secs(600))),
            Due::Run {
                scheduled: utc("2025-03-10T02:00:00Z"),
                next: Some(utc("2025-03-11T02:00:00Z"))
            }
        );
        // Taking it moves `since` forward; nothing else is owed.
        assert!(matches!(
            due(&daily(), utc("2025-03-10T02:00:00Z"), now, None),
            Due::Wait { .. }
        ));
    }

    #[test]
    fn a_run_missed_beyond_the_deadline_is_skipped() {
        let last = utc("2025-03-09T02:00:00Z");
        let now = utc("2025-03-10T05:00:00Z");
        assert_eq!(
            due(&daily(), last, now, Some(Duration::from_secs(3600))),
            Due::Missed {
                scheduled: utc("2025-03-10T02:00:00Z"),
                next: Some(utc("2025-03-11T02:00:00Z"))
            }
        );
        // Without a deadline any lateness is accepted, once.
        assert!(matches!(due(&daily(), last, now, None), Due::Run { .. }));
    }

    #[test]
    fn a_clock_behind_the_last_schedule_time_waits() {
        let last = utc("2025-03-10T02:00:00Z");
        let now = utc("2025-03-10T01:59:00Z");
        assert_eq!(
            due(&daily(), last, now, None),
            Due::Wait {
                next: Some(utc("2025-03-11T02:00:00Z"))
            }
        );
    }

    #[test]
    fn next_after_is_in_utc_whatever_the_zone() {
        let schedule = Schedule::parse("0 2 * * *", Some("America/New_York")).unwrap();
        let next = schedule.next_after(Utc.with_ymd_and_hms(2025, 1, 10, 0, 0, 0).unwrap());
        assert_eq!(next, Some(utc("2025-01-10T07:00:00Z")));
    }
}
