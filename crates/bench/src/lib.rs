//! The pure parts of the control-plane benchmark (`benches/control_plane`): the objects it
//! creates, and reading what it measures from percentiles, Prometheus text, operator logs and
//! `/proc`. The benchmark itself needs the cluster; these are tested without one.

pub mod objects;
pub mod readings;
pub mod stats;
