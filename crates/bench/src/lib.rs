//! The pure parts of the control-plane benchmark (`benches/control_plane`): its settings, the
//! objects it creates, reading what it measures from Prometheus text, operator logs and
//! `/proc`, percentiles, and the tables it prints. The benchmark itself needs the cluster;
//! these are tested without one.

pub mod figures;
pub mod objects;
pub mod readings;
pub mod scale_table;
pub mod settings;
pub mod stats;
pub mod table;
