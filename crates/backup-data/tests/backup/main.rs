//! Scenarios against real servers: a private PostgreSQL per test and an
//! in-process S3 server. Each scenario that concerns storage runs against
//! both destinations. Those that run the binary are in `backup-operator`'s tests.

/// The servers and fixtures live in a crate of their own, which the binary's tests share.
use backup_test_support as support;

mod corruption;
mod drill;
mod formats;
mod interrupted;
mod pitr;
mod retention;
mod round_trip;
mod row_counts;
mod unreachable;
mod verification;
