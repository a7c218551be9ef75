//! Following one object to the end of something, with a progress line: a watch on the
//! object, never a poll loop.

use std::fmt::Debug;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use futures::StreamExt as _;
use kube::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use serde::de::DeserializeOwned;

use crate::failure::{Failure, one_line};

/// Where the followed thing is.
pub enum Step {
    /// Not yet taken up by its operator.
    Waiting,
    /// Under way; the line says how far.
    Progress(String),
    /// Over: success with a closing line, or a failure.
    Done(Result<String, Failure>),
}

/// How long to wait for the operator to take something up, and for it to end.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub pickup: Duration,
    pub total: Duration,
}

pub struct Follow<'a> {
    /// Kind and name, for messages.
    pub what: String,
    /// How long it may stay `Waiting` before the operator counts as not running.
    pub pickup: Duration,
    /// What to say when it does.
    pub not_picked_up: &'a str,
    pub timeout: Duration,
}

/// Watches `name` until `step` says it is done. Progress lines overwrite each other on a
/// terminal; elsewhere each distinct one is printed once.
pub async fn follow<K>(
    api: &Api<K>,
    name: &str,
    settings: Follow<'_>,
    step: impl Fn(&K) -> Step,
) -> Result<String, Failure>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let terminal = std::io::stderr().is_terminal();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api.clone(), config).applied_objects().boxed();
    let started = tokio::time::Instant::now();
    let mut picked_up = false;
    let mut last_line = String::new();
    loop {
        let deadline = if picked_up {
            started + settings.timeout
        } else {
            started + settings.pickup.min(settings.timeout)
        };
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let object = match next {
            Err(_) if !picked_up => return Err(Failure::new(settings.not_picked_up)),
            Err(_) => {
                return Err(Failure::new(format!(
                    "{} did not finish within {}s; it goes on: follow it with `kubectl pg status`",
                    settings.what,
                    settings.timeout.as_secs()
                )));
            }
            Ok(None) => {
                return Err(Failure::new(format!(
                    "the watch on {} ended; run the command again to follow it",
                    settings.what
                )));
            }
            Ok(Some(Err(error))) => {
                return Err(Failure::new(format!(
                    "watching {} failed: {}",
                    settings.what,
                    one_line(&error.to_string())
                )));
            }
            Ok(Some(Ok(object))) => object,
        };
        match step(&object) {
            Step::Waiting => {}
            Step::Progress(line) => {
                picked_up = true;
                if line != last_line {
                    let mut err = std::io::stderr();
                    if terminal {
                        let _ = write!(err, "\r\x1b[2K{line}");
                    } else {
                        let _ = writeln!(err, "{line}");
                    }
                    let _ = err.flush();
                    last_line = line;
                }
            }
            Step::Done(result) => {
                if terminal && !last_line.is_empty() {
                    eprintln!();
                }
                return result;
            }
        }
    }
}
