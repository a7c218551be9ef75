//! The container being told to stop. Kubernetes sends the image's stop signal, which for
//! images like the official postgres one is SIGINT, not SIGTERM; both mean "stop cleanly". As
//! PID 1 the manager ignores any signal it has no handler for, so both are handled.

use anyhow::Result;
use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct StopRequests {
    terminate: Signal,
    interrupt: Signal,
}

impl StopRequests {
    pub fn listen() -> Result<StopRequests> {
        Ok(StopRequests {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves at the next SIGTERM or SIGINT.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
