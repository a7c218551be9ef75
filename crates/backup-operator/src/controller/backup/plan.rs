//! Validate and decide, both pure: is the Backup usable, and is a run due now? The clock,
//! the Database's state and the Jobs found are inputs, so every branch is a table row.

use std::time::Duration;

use api::{Backup, Database};
use chrono::{DateTime, Utc};
use kube::ResourceExt as _;

use crate::schedule::{Due, Schedule, ScheduleError, due};

/// How a Backup's Database looks from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseState {
    Missing,
    NotReady,
    Ready,
}

impl DatabaseState {
    pub fn of(database: Option<&Database>) -> Self {
        match database {
            None => DatabaseState::Missing,
            Some(db) if db.is_ready() => DatabaseState::Ready,
            Some(_) => DatabaseState::NotReady,
        }
    }
}

/// A Backup that cannot run until the user changes something.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    #[error(
        "Database {database} is to be initialised from this Backup (its spec.backupRef names {backup}), \
         while this Backup waits for that Database to be Ready: each waits for the other. \
         Point the Database's backupRef at a Backup of another Database, or back up another Database"
    )]
    DependencyCycle { database: String, backup: String },

    #[error("{0}; fix spec.schedule or spec.timeZone")]
    Schedule(#[from] ScheduleError),
}

impl Invalid {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Invalid::DependencyCycle { .. } => "DependencyCycle",
            Invalid::Schedule(_) => "InvalidSchedule",
        }
    }
}

/// Checks what the API server's schema cannot: the schedule's meaning and the cycle with
/// the Database. Returns the parsed schedule, if any.
pub fn validate(backup: &Backup, database: Option<&Database>) -> Result<Option<Schedule>, Invalid> {
    let cycle = database
        .and_then(|db| db.spec.backup_ref.as_ref())
        .is_some_and(|r| r.name == backup.name_any());
    if cycle {
        return Err(Invalid::DependencyCycle {
            database: backup.spec.database_ref.name.clone(),
            backup: backup.name_any(),
        });
    }
    let spec = &backup.spec;
    Ok(spec
        .schedule
        .as_deref()
        .map(|expression| Schedule::parse(expression, spec.time_zone.as_deref()))
        .transpose()?)
}

/// What to do about runs now.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Start the run with this id, scheduled for this time; it answers `request`, the
    /// pending `run-now` request, if there is one.
    Start {
        run_id: String,
        scheduled: DateTime<Utc>,
        request: Option<String>,
    },
    /// A run is in flight; at most one ever is.
    InFlight {
        job: String,
    },
    /// A run is due but the Database cannot serve it; the Database's watch wakes us.
    WaitForDatabase,
    /// Nothing is due before `Plan::next`.
    WaitForSchedule,
    Suspended,
    /// A Backup without a schedule took its one run.
    Done,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub decision: Decision,
    /// When the next scheduled run is due: the only time-based requeue.
    pub next: Option<DateTime<Utc>>,
    /// A scheduled time skipped because it passed longer ago than the starting deadline.
    pub missed: Option<DateTime<Utc>>,
}

/// Everything the decision depends on.
pub struct Inputs<'a> {
    pub backup: &'a Backup,
    pub schedule: Option<&'a Schedule>,
    /// The scheduled time of the newest run started, from status or from the Jobs found.
    pub last_scheduled: Option<DateTime<Utc>>,
    pub in_flight: Option<&'a str>,
    /// The value of a `run-now` annotation no run has answered yet.
    pub run_now: Option<&'a str>,
    pub database: DatabaseState,
    pub now: DateTime<Utc>,
}

pub fn decide(inputs: &Inputs) -> Plan {
    let spec = &inputs.backup.spec;
    let now = inputs.now;
    let plan = |decision, next| Plan {
        decision,
        next,
        missed: None,
    };
    // Any run started answers a pending run-now request: the user asked for a run now, and
    // one run is what they get, never a scheduled one and a requested one back to back.
    let start = |scheduled: DateTime<Utc>| match inputs.database {
        DatabaseState::Ready => Decision::Start {
            run_id: super::super::time::run_id(scheduled),
            scheduled,
            request: inputs.run_now.map(str::to_owned),
        },
        _ => Decision::WaitForDatabase,
    };
    if spec.suspend {
        let decision = match inputs.in_flight {
            Some(job) => Decision::InFlight { job: job.into() },
            None => Decision::Suspended,
        };
        return plan(decision, None);
    }
    let Some(schedule) = inputs.schedule else {
        let decision = match (inputs.in_flight, inputs.last_scheduled) {
            (Some(job), _) => Decision::InFlight { job: job.into() },
            (None, Some(_)) if inputs.run_now.is_some() => start(now),
            (None, Some(_)) => Decision::Done,
            // The run's time is when it could start, which names it.
            (None, None) => start(now),
        };
        return plan(decision, None);
    };
    if let Some(job) = inputs.in_flight {
        return plan(
            Decision::InFlight { job: job.into() },
            schedule.next_after(now),
        );
    }
    if inputs.last_scheduled.is_none() && spec.immediate {
        return plan(start(now), schedule.next_after(now));
    }
    // Before the first run, scheduled times count from the Backup's creation.
    let created = inputs.backup.metadata.creation_timestamp.as_ref();
    let since = inputs
        .last_scheduled
        .or_else(|| created.map(super::super::time::from_time))
        .unwrap_or(now);
    let deadline = Duration::from_secs(spec.starting_deadline_seconds.max(0) as u64);
    match due(schedule, since, now, Some(deadline)) {
        Due::Run { scheduled, next } => plan(start(scheduled), next),
        Due::Missed { scheduled, next } => Plan {
            decision: match inputs.run_now {
                Some(_) => start(now),
                None => Decision::WaitForSchedule,
            },
            next,
            missed: Some(scheduled),
        },
        Due::Wait { next } if inputs.run_now.is_some() => Plan {
            decision: start(now),
            next,
            missed: None,
        },
        Due::Wait { next } => plan(Decision::WaitForSchedule, next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(text: &str) -> DateTime<Utc> {
        super::super::super::time::parse_rfc3339(text).unwrap()
    }

    fn backup(spec: serde_json::Value) -> Backup {
        let mut full = json!({"databaseRef": {"name": "shop"}});
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod", "creationTimestamp": "2026-01-01T12:00:00Z"},
            "spec": full
        }))
        .unwrap()
    }

    fn start(run_id: &str) -> Decision {
        Decision::Start {
            run_id: run_id.into(),
            scheduled: super::super::super::time::scheduled_time(run_id).unwrap(),
            request: None,
        }
    }

    fn answering(run_id: &str, request: &str) -> Decision {
        match start(run_id) {
            Decision::Start {
                run_id, scheduled, ..
            } => Decision::Start {
                run_id,
                scheduled,
                request: Some(request.into()),
            },
            other => other,
        }
    }

    /// (spec, last scheduled, in flight, database, now, decision, next, missed)
    type Row<'a> = (
        &'a serde_json::Value,
        Option<&'a str>,
        Option<&'a str>,
        DatabaseState,
        &'a str,
        Decision,
        Option<DateTime<Utc>>,
        Option<&'a str>,
    );

    #[test]
    fn the_decision_for_each_situation() {
        use DatabaseState::*;
        let daily = json!({"schedule": "0 2 * * *"});
        let daily_later = json!({"schedule": "0 2 * * *", "immediate": false});
        let suspended = json!({"schedule": "0 2 * * *", "suspend": true});
        let one_shot = json!({});
        let next = Some(utc("2026-01-03T02:00:00Z"));
        // (spec, last scheduled, in flight, database, now, decision, next, missed)
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // Without a schedule: exactly one run, as soon as the Database is Ready.
            (&one_shot, None, None, Ready, "2026-01-02T10:00:00Z", start("20260102T100000Z"), None, None),
            (&one_shot, None, None, NotReady, "2026-01-02T10:00:00Z", Decision::WaitForDatabase, None, None),
            (&one_shot, None, Some("nightly-x"), Ready, "2026-01-02T10:00:00Z", Decision::InFlight { job: "nightly-x".into() }, None, None),
            (&one_shot, Some("2026-01-02T10:00:00Z"), None, Ready, "2026-01-05T10:00:00Z", Decision::Done, None, None),
            // Immediate (the default): the first run at once, then at cron times.
            (&daily, None, None, Ready, "2026-01-02T10:00:00Z", start("20260102T100000Z"), next, None),
            (&daily, None, None, Missing, "2026-01-02T10:00:00Z", Decision::WaitForDatabase, next, None),
            (&daily, Some("2026-01-02T10:00:00Z"), None, Ready, "2026-01-02T11:00:00Z", Decision::WaitForSchedule, next, None),
            (&daily, Some("2026-01-02T10:00:00Z"), None, Ready, "2026-01-03T02:00:00Z", start("20260103T020000Z"), Some(utc("2026-01-04T02:00:00Z")), None),
            // At most one run in flight, even when the next one is due.
            (&daily, Some("2026-01-02T02:00:00Z"), Some("nightly-a"), Ready, "2026-01-03T02:00:00Z", Decision::InFlight { job: "nightly-a".into() }, Some(utc("2026-01-04T02:00:00Z")), None),
            // Not immediate: the first run at the first cron time after creation.
            (&daily_later, None, None, Ready, "2026-01-02T01:00:00Z", Decision::WaitForSchedule, Some(utc("2026-01-02T02:00:00Z")), None),
            (&daily_later, None, None, Ready, "2026-01-02T02:00:01Z", start("20260102T020000Z"), next, None),
            // Operator down for days: one run if within the deadline (600 s), never a burst...
            (&daily, Some("2025-12-20T02:00:00Z"), None, Ready, "2026-01-02T02:05:00Z", start("20260102T020000Z"), next, None),
            // ...and none when the latest scheduled time passed longer ago.
            (&daily, Some("2025-12-20T02:00:00Z"), None, Ready, "2026-01-02T09:00:00Z", Decision::WaitForSchedule, next, Some("2026-01-02T02:00:00Z")),
            // Suspended: no new runs and no next time; a run in flight finishes.
            (&suspended, Some("2026-01-01T02:00:00Z"), None, Ready, "2026-01-02T02:00:00Z", Decision::Suspended, None, None),
            (&suspended, Some("2026-01-01T02:00:00Z"), Some("nightly-b"), Ready, "2026-01-02T02:00:00Z", Decision::InFlight { job: "nightly-b".into() }, None, None),
        ];
        for (i, (spec, last, in_flight, database, now, decision, next, missed)) in
            rows.into_iter().enumerate()
        {
            let backup = backup(spec.clone());
            let schedule = validate(&backup, None).unwrap();
            let plan = decide(&Inputs {
                backup: &backup,
                schedule: schedule.as_ref(),
                last_scheduled: last.map(utc),
                in_flight,
                run_now: None,
                database,
                now: utc(now),
            });
            let want = Plan {
                decision,
                next,
                missed: missed.map(utc),
            };
            assert_eq!(plan, want, "row {i}");
        }
    }

    /// (spec, last scheduled, in flight, run-now request, database, now, decision)
    type RunNowRow<'a> = (
        &'a serde_json::Value,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        DatabaseState,
        &'a str,
        Decision,
    );

    #[test]
    fn a_run_now_request_starts_exactly_one_run_when_it_can() {
        use DatabaseState::*;
        let daily = json!({"schedule": "0 2 * * *"});
        let suspended = json!({"schedule": "0 2 * * *", "suspend": true});
        let one_shot = json!({});
        let next = Some(utc("2026-01-03T02:00:00Z"));
        let last = Some("2026-01-02T02:00:00Z");
        // (spec, last scheduled, in flight, run-now request, database, now, decision)
        #[rustfmt::skip]
        let rows: Vec<RunNowRow> = vec![
            // Between scheduled times: a run now, and the schedule goes on as before.
            (&daily, last, None, Some("1"), Ready, "2026-01-02T10:00:00Z", answering("20260102T100000Z", "1")),
            // No request (or one already answered, which the caller passes as none): nothing.
            (&daily, last, None, None, Ready, "2026-01-02T10:00:00Z", Decision::WaitForSchedule),
            // A run in flight answers nothing; the request waits for it to finish.
            (&daily, last, Some("nightly-a"), Some("1"), Ready, "2026-01-02T10:00:00Z", Decision::InFlight { job: "nightly-a".into() }),
            // The Database cannot serve it: wait, like a scheduled run.
            (&daily, last, None, Some("1"), NotReady, "2026-01-02T10:00:00Z", Decision::WaitForDatabase),
            // Suspended: no runs at all, requested or not.
            (&suspended, last, None, Some("1"), Ready, "2026-01-02T10:00:00Z", Decision::Suspended),
            // A scheduled run due at the same moment answers the request: one run, not two.
            (&daily, last, None, Some("1"), Ready, "2026-01-03T02:00:00Z", answering("20260103T020000Z", "1")),
            // A Backup without a schedule that took its one run takes another on request.
            (&one_shot, last, None, Some("1"), Ready, "2026-01-02T10:00:00Z", answering("20260102T100000Z", "1")),
            (&one_shot, last, None, None, Ready, "2026-01-02T10:00:00Z", Decision::Done),
        ];
        for (i, (spec, last, in_flight, run_now, database, now, decision)) in
            rows.into_iter().enumerate()
        {
            let backup = backup(spec.clone());
            let schedule = validate(&backup, None).unwrap();
            let plan = decide(&Inputs {
                backup: &backup,
                schedule: schedule.as_ref(),
                last_scheduled: last.map(utc),
                in_flight,
                run_now,
                database,
                now: utc(now),
            });
            assert_eq!(plan.decision, decision, "row {i}");
            if backup.spec.schedule.is_some() && !backup.spec.suspend && i != 5 {
                assert_eq!(plan.next, next, "row {i}: the schedule is unchanged");
            }
        }
    }

    #[test]
    fn invalid_backups_say_what_to_change() {
        let database = |backup_ref: &str| -> Database {
            testkit::database("shop").backup_ref(backup_ref).build()
        };
        let cycle = validate(&backup(json!({})), Some(&database("nightly"))).unwrap_err();
        assert_eq!(cycle.reason(), "DependencyCycle");
        assert!(cycle.to_string().contains("each waits for the other"));
        assert!(validate(&backup(json!({})), Some(&database("other"))).is_ok());
        let bad = validate(&backup(json!({"schedule": "0 0 2 * * *"})), None).unwrap_err();
        assert_eq!(bad.reason(), "InvalidSchedule");
        assert!(bad.to_string().contains("fix spec.schedule"));
    }
}
