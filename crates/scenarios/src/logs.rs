//! Counting what an operator logged, to see that it reconciled again.

use testenv::OperatorProcess;

use crate::CONVERGE;

/// What both operators log at the end of every reconcile.
pub const RECONCILED: &str = "reconciled";

pub fn log_count(operator: &OperatorProcess, needle: &str) -> usize {
    std::fs::read_to_string(operator.log_path())
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Waits until the operator's log holds more than `seen` lines with `needle`.
pub async fn wait_for_more_logs(operator: &OperatorProcess, needle: &str, seen: usize) {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    while log_count(operator, needle) <= seen {
        assert!(
            tokio::time::Instant::now() < deadline,
            "operator logged no new {needle:?}:\n{}",
            operator.log_tail(40)
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
