//! What every operator of this project does the same way to run, so an operator is its
//! controllers plus a few dozen lines of wiring:
//!
//! - [`process`]: one process from flags ([`args`]) to shutdown: [`logging`], a client, the
//!   [`shutdown`] signal, the HTTP [`server`] (`/metrics`, `/healthz`, `/readyz` as
//!   [`readiness`] says), leader [`election`] on a Lease, and holding the controllers back
//!   until their kinds are served ([`crds`]).
//! - [`controller`]: a Controller whose cache keeps only what reconciles read ([`cache`]),
//!   whose relists never outrun the cache ([`relist`]) and whose watches pause briefly after
//!   a failure ([`watch_backoff`]); reconciles timed and counted ([`metrics`]), failures
//!   retried with a per-object backoff ([`error_backoff`]) as the operator's
//!   [`ReconcileError`] says, every object looked at again after a long interval
//!   ([`resync`]).
//! - [`cached`]: what reconciles read instead of the API server: watch caches of objects
//!   kept as JSON text ([`packed`]), with this process's writes laid over them ([`written`]).
//! - [`error`]: the error trait, and objects that do not decode ([`error::decoded`]).
//! - [`events`]: Kubernetes Events with notes the API server accepts.

pub mod args;
pub mod cache;
pub mod cached;
pub mod controller;
pub mod crds;
pub mod election;
pub mod error;
pub mod error_backoff;
pub mod events;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod packed;
pub mod process;
pub mod readiness;
pub mod relist;
pub mod resync;
pub mod server;
pub mod shutdown;
pub mod watch_backoff;
pub mod written;

pub use args::{LogFormat, RuntimeArgs};
pub use controller::Reconciles;
pub use error::{InvalidObject, ReconcileError};
pub use metrics::ReconcileMetrics;
pub use process::Process;
pub use readiness::{Health, Readiness};
