//! Running a kube `Controller` the same way in every operator: the reconcile timed and
//! counted, errors logged with their causes and retried with a per-object backoff (or, when
//! retrying cannot help, left until the object changes), the long resync safety net on every
//! success, and the failure counts of deleted objects forgotten.
//!
//! With [`cached`] for the main kind's watch, a controller is its watches plus
//! `Reconciles::new(...).run(controller, reconcile, context, shutdown)`.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Resource, ResourceExt as _};
use serde::de::DeserializeOwned;

use crate::error::{ReconcileError, describe};
use crate::error_backoff::ErrorBackoff;
use crate::metrics::ReconcileMetrics;
use crate::{cache, relist, resync, watch_backoff::WatchBackoff};

/// A Controller over `api`'s objects, at most `concurrency` reconciles at once, whose cache
/// leaves out what no reconcile reads ([`cache::slim`]) and whose relists never hand over an
/// object the cache does not hold yet ([`relist`]). Its watches pause after a failure as
/// [`WatchBackoff`] says.
pub fn cached<K>(api: Api<K>, config: watcher::Config, concurrency: u16) -> Controller<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Debug + Unpin,
{
    let (store, writer) = reflector::store();
    let events = watcher::watcher(api, config)
        .modify(cache::slim)
        .reflect(writer);
    let objects = relist::objects_in_store(events, store.clone());
    Controller::for_stream(objects, store)
        .with_config(controller::Config::default().concurrency(concurrency))
        .trigger_backoff(WatchBackoff::default())
}

/// A cache of `api`'s objects, as `keep` leaves them of what the watch delivers (after
/// [`cache::slim`]), and the stream of those that changed or went away, each handed over
/// once the cache shows it ([`relist::touched_in_store`]): the trigger of `owns_stream` or
/// `watches_stream` for a kind the reconciles read from the cache.
pub fn reflected<K>(
    api: Api<K>,
    config: watcher::Config,
    mut keep: impl FnMut(&mut K) + Send + 'static,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Debug + Unpin + Send + Sync,
{
    let (store, writer) = reflector::store();
    let events = watcher::watcher(api, config)
        .modify(move |object| {
            cache::slim(object);
            keep(object);
        })
        .reflect(writer);
    let touched = relist::touched_in_store(events, store.clone());
    (store, touched)
}

/// How the reconciles of one controller are timed, counted and retried.
pub struct Reconciles {
    /// The `controller` label of the metrics.
    name: &'static str,
    metrics: Arc<ReconcileMetrics>,
    backoff: ErrorBackoff,
    resync: Duration,
}

impl Reconciles {
    /// `resync` is how long an object no event touched waits for its next look ([`resync`]).
    pub fn new(name: &'static str, metrics: Arc<ReconcileMetrics>, resync: Duration) -> Self {
        Reconciles {
            name,
            metrics,
            backoff: ErrorBackoff::default(),
            resync,
        }
    }

    /// Runs `controller` with `reconcile` until `shutdown` resolves and the reconciles in
    /// flight have finished.
    pub async fn run<K, C, E, F, Fut>(
        self,
        controller: Controller<K>,
        reconcile: F,
        context: Arc<C>,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ) where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Debug + Unpin,
        C: Send + Sync + 'static,
        E: ReconcileError,
        F: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let this = Arc::new(self);
        let bound = Arc::new(Bound {
            reconciles: this.clone(),
            context,
        });
        controller
            .graceful_shutdown_on(shutdown)
            .run(
                move |object, bound: Arc<Bound<C>>| {
                    let work = reconcile(object.clone(), bound.context.clone());
                    async move { bound.reconciles.timed(object.as_ref(), work).await }
                },
                |object, error, bound| bound.reconciles.error_policy(object.as_ref(), error),
                bound,
            )
            .for_each(move |outcome| {
                this.after(&outcome);
                std::future::ready(())
            })
            .await;
    }

    async fn timed<K: Resource, E: ReconcileError>(
        &self,
        object: &K,
        reconcile: impl Future<Output = Result<Action, E>>,
    ) -> Result<Action, E> {
        let start = Instant::now();
        let result = reconcile.await;
        let category = result.as_ref().err().map(ReconcileError::category);
        self.metrics
            .reconciled(self.name, start.elapsed(), category);
        let action = result?;
        self.backoff
            .reset(&key(object.namespace().as_deref(), &object.name_any()));
        Ok(resync::or_resync(
            action,
            self.resync,
            object.meta().uid.as_deref(),
        ))
    }

    /// Logs a failure with its causes, then retries after a delay that grows with each
    /// failure of the same object, or, when retrying cannot help, waits for a change.
    fn error_policy<K: Resource, E: ReconcileError>(&self, object: &K, error: &E) -> Action {
        let key = key(object.namespace().as_deref(), &object.name_any());
        tracing::warn!(
            controller = self.name,
            object = %key,
            category = error.category(),
            error = %describe(error),
            "reconcile failed"
        );
        next_attempt(&self.backoff, &key, error)
    }

    fn after<K, E>(&self, outcome: &Outcome<K, E>)
    where
        K: Resource,
        K::DynamicType: Debug + Eq + Hash + Clone,
        E: ReconcileError,
    {
        match outcome {
            Ok((object, _)) => tracing::debug!(%object, "reconciled"),
            // Logged by the error policy.
            Err(controller::Error::ReconcilerFailed(_, _)) => {}
            Err(controller::Error::ObjectNotFound(object)) => {
                forget_deleted(&self.backoff, object.namespace.as_deref(), &object.name);
            }
            Err(error) => {
                tracing::warn!(controller = self.name, error = %describe(error), "controller")
            }
        }
    }
}

/// The context a reconcile gets, with the runtime's part beside it.
struct Bound<C> {
    reconciles: Arc<Reconciles>,
    context: Arc<C>,
}

type Outcome<K, E> = Result<(ObjectRef<K>, Action), controller::Error<E, watcher::Error>>;

/// Permanent errors wait for a change; transient ones retry with a growing delay.
fn next_attempt<E: ReconcileError>(backoff: &ErrorBackoff, key: &str, error: &E) -> Action {
    if error.is_retryable() {
        Action::requeue(backoff.next(key, error.first_retry()))
    } else {
        // No retry is scheduled, so no retry could find the object deleted and clear its
        // count; a corrected object starts backing off afresh anyway.
        backoff.reset(key);
        Action::await_change()
    }
}

/// Drops the failure count of an object deleted while it failed. Every count belongs to an
/// object with a retry scheduled; when that retry finds the object gone from the cache, the
/// controller reports it as not found, and nothing else would ever remove the count.
fn forget_deleted(backoff: &ErrorBackoff, namespace: Option<&str>, name: &str) {
    tracing::debug!(namespace, name, "gone before its retry");
    backoff.reset(&key(namespace, name));
}

/// The [`ErrorBackoff`] key of an object.
fn key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_backoff::BASE;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("the API server did not answer")]
        Transient,
        #[error("the bucket refused the credentials")]
        Slow,
        #[error("the spec is invalid")]
        Permanent,
    }

    impl ReconcileError for TestError {
        const CATEGORIES: &'static [&'static str] = &["transient", "slow", "permanent"];
        fn category(&self) -> &'static str {
            match self {
                TestError::Transient => "transient",
                TestError::Slow => "slow",
                TestError::Permanent => "permanent",
            }
        }
        fn is_retryable(&self) -> bool {
            !matches!(self, TestError::Permanent)
        }
        fn first_retry(&self) -> Duration {
            match self {
                TestError::Slow => Duration::from_secs(60),
                _ => BASE,
            }
        }
    }

    /// True when `key` has no failures counted: its next delay is the first one.
    fn forgotten(backoff: &ErrorBackoff, key: &str) -> bool {
        backoff.next(key, BASE) <= BASE * 11 / 10
    }

    #[test]
    fn retries_start_where_the_error_says_and_double() {
        let backoff = ErrorBackoff::default();
        let first = next_attempt(&backoff, "prod/a", &TestError::Transient);
        assert_ne!(first, Action::await_change());
        let slow = next_attempt(&backoff, "prod/b", &TestError::Slow);
        let again = next_attempt(&backoff, "prod/b", &TestError::Slow);
        assert_ne!(slow, again, "the second failure waits longer");
        assert!(!forgotten(&backoff, "prod/b"));
    }

    #[tokio::test]
    async fn a_success_gets_the_resync_and_every_reconcile_is_counted() {
        let registry = prometheus::Registry::new();
        let categories = TestError::CATEGORIES;
        let metrics = ReconcileMetrics::register(&registry, "op", &["cm"], categories)
            .map(Arc::new)
            .unwrap_or_else(|e| panic!("{e}"));
        let resync = Duration::from_secs(600);
        let reconciles = Reconciles::new("cm", metrics.clone(), resync);
        let mut object = k8s_openapi::api::core::v1::ConfigMap::default();
        object.metadata.name = Some("settings".into());
        object.metadata.namespace = Some("prod".into());
        object.metadata.uid = Some("uid-1".into());

        reconciles.backoff.next("prod/settings", BASE);
        let ok = async { Ok::<_, TestError>(Action::await_change()) };
        let action = reconciles.timed(&object, ok).await.ok();
        let next_look = resync::after(resync, "uid-1");
        assert_eq!(action, Some(Action::requeue(next_look)));
        assert!(forgotten(&reconciles.backoff, "prod/settings"));

        let failed = async { Err::<Action, _>(TestError::Slow) };
        assert!(reconciles.timed(&object, failed).await.is_err());
        assert_eq!(metrics.errors("slow"), 1);
        let text = crate::metrics::render(&registry);
        let line = r#"op_reconciliations_total{controller="cm",result="success"} 1"#;
        assert!(text.contains(line), "{text}");
    }

    #[test]
    fn a_permanent_error_waits_for_a_change_and_clears_the_count() {
        let backoff = ErrorBackoff::default();
        next_attempt(&backoff, "prod/shop", &TestError::Transient);
        assert_eq!(
            next_attempt(&backoff, "prod/shop", &TestError::Permanent),
            Action::await_change()
        );
        assert!(forgotten(&backoff, "prod/shop"));
    }

    #[test]
    fn an_object_deleted_while_failing_leaves_no_count_behind() {
        let backoff = ErrorBackoff::default();
        for _ in 0..3 {
            next_attempt(&backoff, "prod/gone", &TestError::Transient);
        }
        next_attempt(&backoff, "prod/kept", &TestError::Transient);
        forget_deleted(&backoff, Some("prod"), "gone");
        assert!(forgotten(&backoff, "prod/gone"));
        assert!(!forgotten(&backoff, "prod/kept"));
    }
}
