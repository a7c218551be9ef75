//! The replicated Database the tests run and what they ask its instances: the helpers live in
//! `scenarios::replication`, which the failover benchmark shares.

pub use scenarios::replication::*;

/// One test at a time: the fencing test cuts a node off, which no other test's instances may
/// run on meanwhile.
pub static NODES_IN_USE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
