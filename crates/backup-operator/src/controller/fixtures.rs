//! The reconciles' context in tests, talking to the test kit's scripted API server: each
//! test lists the exact requests it expects, in order, with the reply to each.

use std::sync::Arc;

use testkit::{Expect, MockApi};

use super::context::Context;
use super::metrics::Metrics;
use super::pod_template::JobSettings;
use super::time::parse_rfc3339;

/// The reconciles' clock in every scenario.
pub const NOW: &str = "2026-01-02T10:00:00Z";

/// A context whose client talks to the script, and the server to `finish` once the
/// reconcile is done. The one place a test builds a [`Context`].
pub fn scenario(script: Vec<Expect>) -> (Arc<Context>, MockApi) {
    let (client, api) = MockApi::with_script(script);
    let settings = JobSettings {
        image: "pgop/backup-operator:dev".into(),
        active_deadline_seconds: 3600,
    };
    let now = parse_rfc3339(NOW).unwrap();
    let reporter = kube::runtime::events::Reporter {
        controller: super::pod_template::MANAGER.into(),
        instance: None,
    };
    let recorder = kube::runtime::events::Recorder::new(client.clone(), reporter);
    let ctx = Context::new(
        client,
        recorder,
        settings,
        Arc::new(Metrics::new()),
        Arc::new(move || now),
    );
    (Arc::new(ctx), api)
}
