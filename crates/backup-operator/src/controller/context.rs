//! What every reconcile shares: the client, the Job settings, metrics, the Event recorder
//! and the clock (injected so the schedule can be tested at fixed times).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use super::metrics::Metrics;
use super::pod_template::{JobSettings, MANAGER};

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct Context {
    pub client: Client,
    pub jobs: JobSettings,
    pub metrics: Arc<Metrics>,
    recorder: Recorder,
    clock: Clock,
}

impl Context {
    pub fn new(client: Client, jobs: JobSettings, metrics: Arc<Metrics>, clock: Clock) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            jobs,
            metrics,
            clock,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Publishes an Event about `object`. A lost Event must not fail the reconcile that
    /// already did the work, so failures are only logged.
    pub async fn event<K>(&self, object: &K, warning: bool, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(event_note(&note)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%reason, error = %crate::error_chain::describe(&error), "could not publish Event");
        }
    }
}

/// The note of an Event: the end of `text`, where errors say what went wrong, cut to what
/// the Events API accepts.
fn event_note(text: &str) -> String {
    api::events::note(&super::job_runs::tail(text)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_fit_the_events_api_and_keep_their_end() {
        for filler in ["x", "é", "€", "🐘"] {
            let text = format!("{}: the bucket does not exist", filler.repeat(2000));
            let note = event_note(&text);
            assert!(
                note.len() <= api::events::NOTE_MAX_BYTES,
                "{} bytes",
                note.len()
            );
            assert!(note.ends_with("the bucket does not exist"), "{note}");
        }
    }
}
