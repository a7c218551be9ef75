//! The two clocks in play: Kubernetes `Time` wraps a `jiff::Timestamp`, while the schedule
//! and the Job results use chrono. Conversions live here so no other module needs both.

use chrono::{DateTime, NaiveDateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use backup_data::storage::RunId;

/// A chrono instant as a Kubernetes `Time`; sub-second precision is kept.
pub fn to_time(at: DateTime<Utc>) -> Time {
    Time(to_timestamp(at))
}

pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp::new(at.timestamp(), at.timestamp_subsec_nanos() as i32)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn from_time(time: &Time) -> DateTime<Utc> {
    from_timestamp(time.0)
}

pub fn from_timestamp(at: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

/// The id of the run scheduled for `scheduled`, e.g. `20260102T020000Z`: the same format the
/// `dump` subcommand uses for its own default, so ids sort like the runs do.
pub fn run_id(scheduled: DateTime<Utc>) -> String {
    RunId::from_time(scheduled).as_str().to_owned()
}

/// The scheduled time a run id names; `None` for ids not written by [`run_id`].
pub fn scheduled_time(run_id: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(run_id, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|naive| naive.and_utc())
}

/// An RFC 3339 timestamp as the Job results carry it.
pub fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn run_ids_round_trip_to_their_scheduled_time() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 2, 0, 0).unwrap();
        assert_eq!(run_id(at), "20260102T020000Z");
        assert_eq!(scheduled_time("20260102T020000Z"), Some(at));
        assert_eq!(scheduled_time("manual-1"), None);
    }

    #[test]
    fn kubernetes_time_round_trips() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 2, 0, 7).unwrap();
        assert_eq!(from_time(&to_time(at)), at);
    }
}
