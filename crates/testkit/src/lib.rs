//! What the operators' tests share, so each test states only what it varies.
//!
//! - [`MockApi`]: a kube [`Client`](kube::Client) over a mocked API server, for narrow
//!   reconcile tests. It records every request; it answers either from a script of expected
//!   requests (strict order, exact replies) or from objects the test stored (when a reconcile
//!   reads concurrently and order cannot be scripted).
//! - One builder per kind ([`database`], [`backup`], [`restore`]): the smallest valid object,
//!   with chainable setters for what tests vary, as a typed value, JSON or a manifest.
//!
//! A dev-dependency only: nothing here ships in an operator.

mod fixtures;
mod mock_api;

pub use fixtures::{BackupFixture, DatabaseFixture, RestoreFixture, backup, database, restore};
pub use mock_api::{Expect, MockApi, Reply, Request, expect, list};
