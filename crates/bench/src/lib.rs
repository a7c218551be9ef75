//! The pure parts of the control-plane benchmark (`benches/control_plane`): its settings, the
//! objects it creates, reading what it measures from Prometheus text, operator logs and
//! `/proc`, percentiles, and the tables it prints; and those of the failover benchmark
//! (`benches/failover`, in [`failover`]). The benchmarks themselves need the cluster; these
//! are tested without one.

pub mod failover;
pub mod figures;
pub mod objects;
pub mod readings;
pub mod scale_table;
pub mod settings;
pub mod stats;
pub mod table;
