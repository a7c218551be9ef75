//! The reconciles' context in tests: caches holding what the test says the watches delivered,
//! and a client talking to the test kit's scripted API server, where each test lists the
//! exact requests it expects, in order, with the reply to each.

use std::sync::Arc;

use api::{Backup, Database};
use k8s_openapi::api::batch::v1::Job;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use runtime::packed::Packed;
use serde::de::DeserializeOwned;
use serde_json::Value;
use testkit::{Expect, MockApi};

use super::caches::{Caches, Stores};
use super::context::Context;
use super::metrics::Metrics;
use super::pod_template::{JobSettings, LABEL_COMPONENT};
use super::time::parse_rfc3339;

/// The reconciles' clock in every scenario.
pub const NOW: &str = "2026-01-02T10:00:00Z";

/// What a scenario's caches hold and which requests it expects.
#[derive(Default)]
pub struct Script {
    databases: Vec<Value>,
    backups: Vec<Value>,
    jobs: Vec<Value>,
    expects: Vec<Expect>,
}

impl Script {
    /// The caches hold `database`.
    pub fn cached_database(mut self, database: Value) -> Self {
        self.databases.push(database);
        self
    }

    /// The caches hold `backup`.
    pub fn cached_backup(mut self, backup: Value) -> Self {
        self.backups.push(backup);
        self
    }

    /// The caches hold `job`, among the Jobs of the component its label names (`backup`
    /// when it has none).
    pub fn cached_job(mut self, job: Value) -> Self {
        self.jobs.push(job);
        self
    }

    /// The next request expected.
    pub fn push(&mut self, expect: Expect) {
        self.expects.push(expect);
    }
}

impl From<Vec<Expect>> for Script {
    fn from(expects: Vec<Expect>) -> Script {
        Script {
            expects,
            ..Script::default()
        }
    }
}

/// A context whose caches hold what `script` says and whose client talks to the script, and
/// the server to `finish` once the reconcile is done. The one place a test builds a
/// [`Context`].
pub fn scenario(script: impl Into<Script>) -> (Arc<Context>, MockApi) {
    let script = script.into();
    let (client, api) = MockApi::with_script(script.expects);
    let settings = JobSettings {
        image: "pgop/backup-operator:dev".into(),
        active_deadline_seconds: 3600,
    };
    let now = parse_rfc3339(NOW).unwrap();
    let reporter = kube::runtime::events::Reporter {
        controller: super::pod_template::MANAGER.into(),
        instance: None,
    };
    let recorder = kube::runtime::events::Recorder::new(client.clone(), reporter);
    let component = |job: &Value| {
        job["metadata"]["labels"][LABEL_COMPONENT]
            .as_str()
            .unwrap_or("backup")
            .to_owned()
    };
    let jobs_of = |wanted: &str| -> Vec<Value> {
        let of_component = script.jobs.iter().filter(|j| component(j) == wanted);
        of_component.cloned().collect()
    };
    let caches = Caches::new(Stores {
        databases: delivered::<DeserializeGuard<Database>>(&script.databases),
        backups: delivered::<DeserializeGuard<Backup>>(&script.backups),
        restores: delivered(&[]),
        backup_jobs: delivered::<Packed<Job>>(&jobs_of("backup")),
        restore_jobs: delivered::<Packed<Job>>(&jobs_of("restore")),
        cleanup_jobs: delivered::<Packed<Job>>(&jobs_of("cleanup")),
        verify_jobs: delivered::<Packed<Job>>(&jobs_of("verify")),
    });
    let ctx = Context::new(
        client,
        recorder,
        settings,
        Arc::new(Metrics::new()),
        caches,
        Arc::new(move || now),
    );
    (Arc::new(ctx), api)
}

/// A cache holding `objects`, as a watch's first list leaves it.
fn delivered<K>(objects: &[Value]) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned,
{
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        let object: K = serde_json::from_value(object.clone()).unwrap();
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    store
}

/// A container's environment, each variable as `NAME=value` or `NAME=secret/key`, for
/// assertions on the pod templates the builders make.
pub fn env_lines(container: &k8s_openapi::api::core::v1::Container) -> Vec<String> {
    let show = |var: &k8s_openapi::api::core::v1::EnvVar| match (&var.value, &var.value_from) {
        (Some(value), _) => format!("{}={value}", var.name),
        (None, Some(from)) => match &from.secret_key_ref {
            Some(key) => format!("{}={}/{}", var.name, key.name, key.key),
            None => var.name.clone(),
        },
        _ => var.name.clone(),
    };
    container.env.iter().flatten().map(show).collect()
}
