//! The Events the operators wrote in a scenario's namespace.

use crate::Scenario;

/// The notes of the Events with `reason` in the scenario's namespace.
pub async fn event_notes(scenario: &Scenario, reason: &str) -> Vec<String> {
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = scenario.api();
    events
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}
