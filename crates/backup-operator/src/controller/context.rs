//! What every reconcile shares: the client, the Job settings, metrics, the Event recorder
//! and the clock (injected so the schedule can be tested at fixed times).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::runtime::events::Recorder;
use kube::{Client, Resource};
use runtime::events::{self, Severity};

use super::caches::Caches;
use super::metrics::Metrics;
use super::pod_template::JobSettings;

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct Context {
    pub client: Client,
    pub jobs: JobSettings,
    pub metrics: Arc<Metrics>,
    /// What the reconciles read instead of the API server.
    pub caches: Arc<Caches>,
    recorder: Recorder,
    clock: Clock,
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        jobs: JobSettings,
        metrics: Arc<Metrics>,
        caches: Arc<Caches>,
        clock: Clock,
    ) -> Self {
        Context {
            recorder,
            client,
            jobs,
            metrics,
            caches,
            clock,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The Event recorder, for what the runtime reports itself (objects that do not decode).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Publishes an Event about `object`. A lost Event must not fail the reconcile that
    /// already did the work, so failures are only logged.
    pub async fn event<K>(&self, object: &K, warning: bool, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let severity = if warning {
            Severity::Warning
        } else {
            Severity::Normal
        };
        let object = object.object_ref(&());
        events::publish(
            &self.recorder,
            &object,
            severity,
            reason,
            &event_note(&note),
            None,
        )
        .await;
    }
}

/// The note of an Event: the end of `text`, where errors say what went wrong, cut to what
/// the Events API accepts.
fn event_note(text: &str) -> String {
    events::note(&super::job_runs::tail(text)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_fit_the_events_api_and_keep_their_end() {
        for filler in ["x", "é", "€", "🐘"] {
            let text = format!("{}: the bucket does not exist", filler.repeat(2000));
            let note = event_note(&text);
            assert!(note.len() <= events::NOTE_MAX_BYTES, "{} bytes", note.len());
            assert!(note.ends_with("the bucket does not exist"), "{note}");
        }
    }
}
