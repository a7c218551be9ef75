//! Reconciles against the test kit's mocked API server answering from stored objects,
//! asserting the exact requests sent. The caches a reconcile reads are filled from the
//! stored objects before each reconcile, as the watches would deliver them
//! ([`Harness::deliver`]); a test that skips that sees a reconcile run before its watch
//! events arrive.

use std::sync::Mutex;

use api::{Backup, Database, DatabasePhase, DatabaseStatus, Restore, RestorePhase};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::DeserializeGuard;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use runtime::packed::Packed;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use testkit::MockApi;

use crate::caches::{Caches, Stores};

use super::*;
use crate::builders::fixtures::{database, database_from_backup};
use crate::validate::fixtures::{backup, restore};
use runtime::ReconcileError as _;

const DB: &str = "/apis/database.example.com/v1/namespaces/prod/databases/shop";
const SECRETS: &str = "/api/v1/namespaces/prod/secrets";
const SECRET: &str = "/api/v1/namespaces/prod/secrets/shop-credentials";
const SERVICES: &str = "/api/v1/namespaces/prod/services";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/prod/statefulsets";
const CLAIMS: &str = "/api/v1/namespaces/prod/persistentvolumeclaims";
const BACKUPS: &str = "/apis/database.example.com/v1/namespaces/prod/backups";
const RESTORES: &str = "/apis/database.example.com/v1/namespaces/prod/restores";
const CREATE: &str = "?&fieldManager=database-operator";
const HEADLESS: &str = "/api/v1/namespaces/prod/services/shop-headless";
const SERVICE: &str = "/api/v1/namespaces/prod/services/shop";
const READ_ONLY: &str = "/api/v1/namespaces/prod/services/shop-ro";
const ANY_INSTANCE: &str = "/api/v1/namespaces/prod/services/shop-r";
const ACCOUNT: &str = "/api/v1/namespaces/prod/serviceaccounts/shop-instance";
const ROLE: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/prod/roles/shop-instance";
const BINDING: &str =
    "/apis/rbac.authorization.k8s.io/v1/namespaces/prod/rolebindings/shop-instance";
const STS: &str = "/apis/apps/v1/namespaces/prod/statefulsets/shop";
const PODS: &str = "/api/v1/namespaces/prod/pods";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices";
const SLICE: &str = "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices/shop-x7k2p";
const BACKUP: &str = "/apis/database.example.com/v1/namespaces/prod/backups/seed";
const RESTORE: &str = "/apis/database.example.com/v1/namespaces/prod/restores/shop-init";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/prod/events";
const APPLY: &str = "?&force=true&fieldManager=database-operator";
struct Harness {
    ctx: Context,
    fake: MockApi,
    watches: Mutex<Watches>,
}

/// The writing ends of the caches, which the watches would fill.
struct Watches {
    secrets: Writer<Packed<Secret>>,
    services: Writer<Packed<Service>>,
    statefulsets: Writer<Packed<StatefulSet>>,
    pods: Writer<Packed<Pod>>,
    claims: Writer<Packed<PersistentVolumeClaim>>,
    slices: Writer<Packed<EndpointSlice>>,
    backups: Writer<Packed<Backup>>,
    restores: Writer<DeserializeGuard<Restore>>,
}

impl Harness {
    /// A fake API server holding `db`, and a context talking to it, with synced caches.
    fn new(db: &Database) -> Harness {
        let (client, fake) = MockApi::start();
        fake.put(DB, to_json(db));
        let reporter = Reporter {
            controller: crate::MANAGER.into(),
            instance: Some("test".into()),
        };
        let (secrets, secrets_writer) = reflector::store();
        let (services, services_writer) = reflector::store();
        let (statefulsets, statefulsets_writer) = reflector::store();
        let (pods, pods_writer) = reflector::store();
        let (claims, claims_writer) = reflector::store();
        let (slices, slices_writer) = reflector::store();
        let (backups, backups_writer) = reflector::store();
        let (restores, restores_writer) = reflector::store();
        let caches = Caches::new(Stores {
            secrets,
            services,
            statefulsets,
            pods,
            claims,
            slices,
            backups,
            restores,
        });
        let ctx = Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            caches,
            statuses_written: Default::default(),
            pod_settings: crate::builders::fixtures::settings(),
        };
        let watches = Mutex::new(Watches {
            secrets: secrets_writer,
            services: services_writer,
            statefulsets: statefulsets_writer,
            pods: pods_writer,
            claims: claims_writer,
            slices: slices_writer,
            backups: backups_writer,
            restores: restores_writer,
        });
        let harness = Harness { ctx, fake, watches };
        harness.deliver();
        harness
    }

    /// What the watches do: every cache lists what the API server holds now.
    fn deliver(&self) {
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        let w = &mut *watches;
        relist(&mut w.secrets, self.fake.objects_under(SECRETS));
        relist(&mut w.services, self.fake.objects_under(SERVICES));
        relist(&mut w.statefulsets, self.fake.objects_under(STATEFULSETS));
        relist(&mut w.pods, self.fake.objects_under(PODS));
        relist(&mut w.claims, self.fake.objects_under(CLAIMS));
        relist(&mut w.slices, self.fake.objects_under(SLICES));
        relist(&mut w.backups, self.fake.objects_under(BACKUPS));
        relist(&mut w.restores, self.fake.objects_under(RESTORES));
    }

    /// Reconciles `db` once the watches delivered what the API server holds.
    async fn reconcile(&self, db: &Database) -> Result<Action, Error> {
        self.deliver();
        self.reconcile_before_delivery(db).await
    }

    /// Reconciles `db` with the caches as they are: as when events of one Database follow each
    /// other faster than the watches deliver the operator's own writes.
    async fn reconcile_before_delivery(&self, db: &Database) -> Result<Action, Error> {
        reconcile(&DeserializeGuard(Ok(db.clone())), &self.ctx).await
    }

    /// `db` with the status the operator last wrote, as the next watch event delivers it.
    fn refreshed(&self, db: &Database) -> Database {
        let status = self.fake.get(DB).map(|o| o["status"].clone());
        let mut db = db.clone();
        db.status = status.and_then(|s| serde_json::from_value::<DatabaseStatus>(s).ok());
        db
    }

    /// The StatefulSet controller's work: `ready` of its replicas ready, Pods to match; and
    /// the EndpointSlice controller's, which publishes a ready Pod to the client Service.
    fn statefulset_runs(&self, ready: i64, pod_state: Value) {
        let mut sts = self
            .fake
            .get(STS)
            .unwrap_or_else(|| panic!("no StatefulSet"));
        let replicas = sts["spec"]["replicas"].clone();
        sts["status"] = json!({
            "replicas": replicas, "readyReplicas": ready, "updatedReplicas": replicas,
            "currentReplicas": replicas, "observedGeneration": sts["metadata"]["generation"],
        });
        self.fake.put(STS, sts);
        // As the instance manager in the Pod labels it.
        let labels = json!({
            "app.kubernetes.io/name": "postgresql", "database.example.com/database": "shop",
            "app.kubernetes.io/managed-by": "database-operator",
            "database.example.com/role": "primary",
        });
        self.fake.put(
            &format!("{PODS}/shop-0"),
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "shop-0", "namespace": "prod", "labels": labels},
                "status": {"containerStatuses": [{
                    "name": "postgres", "image": "postgres:17", "imageID": "", "ready": ready > 0,
                    "restartCount": 0, "state": pod_state,
                }]},
            }),
        );
        self.service_routes(ready > 0);
    }

    /// The EndpointSlice controller's work: Pod `shop-0` published to Service `shop`, a
    /// `ready` endpoint or not yet.
    fn service_routes(&self, ready: bool) {
        let labels = json!({
            "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "shop",
            "database.example.com/database": "shop",
            "app.kubernetes.io/managed-by": "database-operator",
            "kubernetes.io/service-name": "shop",
        });
        self.fake.put(
            SLICE,
            json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "shop-x7k2p", "namespace": "prod", "labels": labels},
                "addressType": "IPv4",
                "endpoints": [{
                    "addresses": ["10.244.0.250"], "conditions": {"ready": ready},
                    "targetRef": {"kind": "Pod", "name": "shop-0", "namespace": "prod"},
                }],
            }),
        );
    }

    fn write_lines(&self) -> Vec<String> {
        self.fake.writes().iter().map(|r| r.line()).collect()
    }

    /// The body of the one write to `path`.
    fn body_of(&self, method: &str, path: &str) -> Value {
        let writes = self.fake.writes();
        let matching: Vec<_> = writes
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "one {method} {path} in {:#?}",
            self.write_lines()
        );
        matching[0].body.clone()
    }
}

/// Replaces what `writer`'s cache holds with `objects`, as a relist does.
fn relist<K>(writer: &mut Writer<K>, objects: Vec<Value>)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        let object: K = serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"));
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

/// What a successful reconcile returns: wait for the next change (the runtime adds the long
/// resync safety net to every success).
fn awaits_change() -> Action {
    Action::await_change()
}

fn to_json(db: &Database) -> Value {
    serde_json::to_value(db).unwrap_or_default()
}

fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or_default()
}

fn decoded(secret: &Value, key: &str) -> String {
    let b64 = secret["data"][key].as_str().unwrap_or_default();
    let value: k8s_openapi::ByteString =
        serde_json::from_value(json!(b64)).unwrap_or(k8s_openapi::ByteString(vec![]));
    String::from_utf8(value.0).unwrap_or_default()
}

#[tokio::test]
async fn fresh_database_applies_its_objects_then_reports_deploying() {
    let db = database("shop");
    let h = Harness::new(&db);

    let action = h.reconcile(&db).await;
    assert!(matches!(action, Ok(a) if a == awaits_change()));

    // Everything is read from the caches; the Secret is created, never applied over one
    // the cache may not show yet.
    assert_eq!(h.fake.reads(), Vec::<String>::new());
    assert_eq!(
        h.write_lines(),
        [
            format!("POST {SECRETS}{CREATE}"),
            format!("PATCH {HEADLESS}{APPLY}"),
            format!("PATCH {SERVICE}{APPLY}"),
            format!("PATCH {READ_ONLY}{APPLY}"),
            format!("PATCH {ANY_INSTANCE}{APPLY}"),
            format!("PATCH {ACCOUNT}{APPLY}"),
            format!("PATCH {ROLE}{APPLY}"),
            format!("PATCH {BINDING}{APPLY}"),
            format!("PATCH {STS}{APPLY}"),
            format!("PATCH {DB}/status{APPLY}"),
        ]
    );

    let secret = h.body_of("POST", SECRETS);
    let password = decoded(&secret, "password");
    assert_eq!(password.len(), 32);
    assert_eq!(decoded(&secret, "username"), "shop_owner");
    assert_eq!(secret["metadata"]["ownerReferences"][0]["controller"], true);
    assert!(secret["metadata"]["annotations"]["database.example.com/desired-hash"].is_string());

    let sts = h.body_of("PATCH", STS);
    assert_eq!(sts["kind"], "StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "postgres:17"
    );
    assert_eq!(h.body_of("PATCH", HEADLESS)["spec"]["clusterIP"], "None");

    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Deploying");
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["secretName"], "shop-credentials");
    assert_eq!(status["endpoint"], "shop.prod.svc:5432");
    assert_eq!(condition(&status, "Ready")["status"], "False");
    assert_eq!(condition(&status, "Progressing")["status"], "True");
    assert!(condition(&status, "WaitingForBackup").is_null());

    // Deploying is a step on the way, in the status only: no Event.
    // The password goes into the Secret and nowhere else.
    for request in h.fake.requests() {
        if request.path != SECRETS {
            let body = request.body.to_string();
            assert!(
                !body.contains(&password),
                "password leaked to {}",
                request.line()
            );
        }
    }
}

/// Runs a fresh Database to Ready and returns it as the watch would deliver it.
async fn ready_database(h: &Harness, db: &Database) -> Database {
    h.reconcile(db).await.unwrap_or_else(|e| panic!("{e}"));
    let db = h.refreshed(db);
    h.statefulset_runs(1, json!({"running": {}}));
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    let db = h.refreshed(&db);
    assert_eq!(db.phase(), DatabasePhase::Ready);
    db
}

#[tokio::test]
async fn unchanged_ready_database_makes_no_request_at_all() {
    let h = Harness::new(&database("shop"));
    let db = ready_database(&h, &database("shop")).await;
    h.fake.forget_requests();

    for _ in 0..3 {
        let action = h.reconcile(&db).await;
        assert!(matches!(action, Ok(a) if a == awaits_change()));
    }

    let requests: Vec<String> = h.fake.requests().iter().map(|r| r.line()).collect();
    assert!(
        requests.is_empty(),
        "steady state must not ask the API server anything: {requests:#?}"
    );
}

#[tokio::test]
async fn a_burst_of_reconciles_before_the_watches_deliver_writes_nothing_twice() {
    let mut db = database("shop");
    // As the Database cache holds it: in the version before this operator's status patch.
    db.metadata.resource_version = Some("1".into());
    let h = Harness::new(&db);
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    let writes = h.write_lines().len();

    // The Database's own status event and the owned objects' events wake it again at once,
    // before any watch delivered what the first reconcile wrote.
    for _ in 0..3 {
        let action = h.reconcile_before_delivery(&db).await;
        assert!(matches!(action, Ok(a) if a == awaits_change()));
    }
    let again: Vec<String> = h.write_lines().split_off(writes);
    assert!(again.is_empty(), "written twice: {again:#?}");
    assert_eq!(h.fake.reads(), Vec::<String>::new());
}

#[tokio::test]
async fn a_secret_the_cache_does_not_show_yet_is_read_not_overwritten() {
    let db = database("shop");
    let h = Harness::new(&db);
    // Created by a reconcile before this operator restarted; the watch has not delivered it.
    let existing = crate::builders::credentials_secret(&db, &"kept-password".into());
    h.fake
        .put(SECRET, serde_json::to_value(&existing).unwrap_or_default());

    h.reconcile_before_delivery(&db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let lines = h.write_lines();
    assert_eq!(lines[0], format!("POST {SECRETS}{CREATE}"), "{lines:#?}");
    assert_eq!(h.fake.reads(), [format!("GET {SECRET}")]);
    let stored = h.fake.get(SECRET).unwrap_or_default();
    assert_eq!(decoded(&stored, "password"), "kept-password");
}

#[tokio::test]
async fn becoming_ready_patches_status_once_and_announces_it() {
    let h = Harness::new(&database("shop"));
    h.reconcile(&database("shop"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let db = h.refreshed(&database("shop"));
    h.statefulset_runs(1, json!({"running": {}}));
    h.fake.forget_requests();

    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        h.write_lines(),
        [
            format!("PATCH {DB}/status{APPLY}"),
            format!("POST {EVENTS}")
        ]
    );
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Ready");
    assert_eq!(status["readyReplicas"], 1);
    assert_eq!(condition(&status, "Ready")["status"], "True");
    assert_eq!(h.body_of("POST", EVENTS)["reason"], "Ready");
}

#[tokio::test]
async fn ready_replicas_wait_until_the_service_routes_to_the_primary() {
    let h = Harness::new(&database("shop"));
    h.reconcile(&database("shop"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let db = h.refreshed(&database("shop"));
    h.statefulset_runs(1, json!({"running": {}}));
    h.service_routes(false);
    h.fake.forget_requests();

    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(h.write_lines(), [format!("PATCH {DB}/status{APPLY}")]);
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Verifying");
    assert_eq!(status["readyReplicas"], 1);
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "ServiceNotRouting");
    assert_eq!(
        ready["message"],
        "all 1 replicas ready; waiting for Service shop to route to Pod shop-0"
    );
    assert_eq!(condition(&status, "Progressing")["status"], "True");

    // The EndpointSlice watch reconciles once the endpoint is ready.
    let db = h.refreshed(&db);
    h.service_routes(true);
    h.fake.forget_requests();
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Ready");
    assert_eq!(condition(&status, "Ready")["status"], "True");
    assert_eq!(h.body_of("POST", EVENTS)["reason"], "Ready");
}

#[tokio::test]
async fn database_waiting_for_its_backup_creates_nothing() {
    let db = database_from_backup("shop", "seed");
    let h = Harness::new(&db);
    h.fake.put(
        BACKUP,
        serde_json::to_value(backup("seed", "old-shop", false)).unwrap_or_default(),
    );

    let action = h.reconcile(&db).await;
    assert!(matches!(action, Ok(a) if a == awaits_change()));

    assert_eq!(h.write_lines(), [format!("PATCH {DB}/status{APPLY}")]);
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Pending");
    assert_eq!(status["observedGeneration"], 1);
    let waiting = condition(&status, "WaitingForBackup");
    assert_eq!(waiting["status"], "True");
    assert_eq!(waiting["reason"], "BackupNotReady");
    assert!(status["secretName"].is_null());
    assert!(h.fake.get(SECRET).is_none());
    assert!(h.fake.get(STS).is_none());

    // Nothing new: nothing written.
    let db = h.refreshed(&db);
    h.fake.forget_requests();
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(h.write_lines().is_empty(), "{:#?}", h.write_lines());

    // The Backup becomes ready: provisioning starts, and the Database verifies its restore.
    h.fake.put(
        BACKUP,
        serde_json::to_value(backup("seed", "old-shop", true)).unwrap_or_default(),
    );
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(h.fake.get(STS).is_some());
    let db = h.refreshed(&db);
    h.statefulset_runs(1, json!({"running": {}}));
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    let db = h.refreshed(&db);
    assert_eq!(db.phase(), DatabasePhase::Verifying);
    h.fake.put(
        RESTORE,
        serde_json::to_value(restore("shop", RestorePhase::Completed, "")).unwrap_or_default(),
    );
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.refreshed(&db).phase(), DatabasePhase::Ready);
}

#[tokio::test]
async fn missing_backup_is_a_warning() {
    let db = database_from_backup("shop", "seed");
    let h = Harness::new(&db);
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    let event = h.body_of("POST", EVENTS);
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "BackupNotFound");
    assert_eq!(h.refreshed(&db).phase(), DatabasePhase::Pending);
}

#[tokio::test]
async fn backup_of_itself_fails_without_provisioning() {
    let db = database_from_backup("shop", "seed");
    let h = Harness::new(&db);
    h.fake.put(
        BACKUP,
        serde_json::to_value(backup("seed", "shop", true)).unwrap_or_default(),
    );

    let action = h.reconcile(&db).await;
    assert!(
        matches!(action, Ok(a) if a == awaits_change()),
        "waits for a change"
    );

    assert_eq!(
        h.write_lines(),
        [
            format!("PATCH {DB}/status{APPLY}"),
            format!("POST {EVENTS}")
        ]
    );
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(condition(&status, "Degraded")["reason"], "DependencyCycle");
    assert_eq!(h.body_of("POST", EVENTS)["type"], "Warning");
}

#[tokio::test]
async fn existing_password_is_kept() {
    let db = database("shop");
    let h = Harness::new(&db);
    // A Secret without the hash annotation: made by hand, or by an older operator.
    let secret = crate::builders::credentials_secret(&db, &"handmade-password".into());
    h.fake
        .put(SECRET, serde_json::to_value(&secret).unwrap_or_default());

    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));

    let applied = h.body_of("PATCH", SECRET);
    assert_eq!(decoded(&applied, "password"), "handmade-password");
}

#[tokio::test]
async fn image_pull_failure_is_reported_and_recovers_after_the_image_is_fixed() {
    let h = Harness::new(&database("shop"));
    h.reconcile(&database("shop"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let db = h.refreshed(&database("shop"));
    h.statefulset_runs(
        0,
        json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"postgres:17\""}}),
    );
    h.fake.forget_requests();

    let action = h.reconcile(&db).await;
    assert!(
        action.is_ok(),
        "a failed Pod is a status, not a reconcile error"
    );
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Failed");
    let degraded = condition(&status, "Degraded");
    assert_eq!(degraded["reason"], "ImagePullBackOff");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Pod shop-0"),
        "{degraded}"
    );
    let event = h.body_of("POST", EVENTS);
    assert_eq!(
        (event["type"].clone(), event["reason"].clone()),
        (json!("Warning"), json!("ImagePullBackOff"))
    );

    // The Pod recovers (say, after spec.image was fixed): the Pod watch reconciles again.
    let db = h.refreshed(&db);
    h.statefulset_runs(1, json!({"running": {}}));
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.refreshed(&db).phase(), DatabasePhase::Ready);
}

#[tokio::test]
async fn transient_secret_failure_reports_provisioning_and_backs_off() {
    let db = database("shop");
    let h = Harness::new(&db);
    h.fake
        .fail(http::Method::POST, SECRETS, 500, "InternalError");

    let result = h.reconcile(&db).await;
    let error = result.err().unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(error.category(), "apply");
    assert!(error.is_retryable());
    assert_eq!(
        h.write_lines(),
        [
            format!("POST {SECRETS}{CREATE}"),
            format!("PATCH {DB}/status{APPLY}"),
            format!("POST {EVENTS}"),
        ]
    );
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Provisioning");
    assert_eq!(
        condition(&status, "Degraded")["reason"],
        "SecretApplyFailed"
    );
    assert!(h.fake.get(STS).is_none(), "stops at the first failure");
}

#[tokio::test]
async fn rejected_statefulset_is_a_permanent_invalid_spec() {
    let db = database("shop");
    let h = Harness::new(&db);
    h.fake.fail(http::Method::PATCH, STS, 422, "Invalid");

    let error = h
        .reconcile(&db)
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(error.category(), "apply_rejected");
    assert!(!error.is_retryable());
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(condition(&status, "Ready")["reason"], "InvalidSpec");
}

#[tokio::test]
async fn spec_change_applies_only_the_statefulset() {
    let h = Harness::new(&database("shop"));
    let mut db = ready_database(&h, &database("shop")).await;
    db.spec.image = "postgres:17.2".into();
    db.metadata.generation = Some(2);
    h.fake.forget_requests();

    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));

    // Back to Deploying: a step on the way, so no Event.
    assert_eq!(
        h.write_lines(),
        [
            format!("PATCH {STS}{APPLY}"),
            format!("PATCH {DB}/status{APPLY}")
        ]
    );
    let sts = h.body_of("PATCH", STS);
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "postgres:17.2"
    );
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Deploying");
    assert_eq!(status["observedGeneration"], 2);
}

const CLAIM: &str = "/api/v1/namespaces/prod/persistentvolumeclaims/data-shop-0";

fn claim_of_1gi() -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-shop-0", "namespace": "prod", "labels": {
            "app.kubernetes.io/name": "postgresql", "database.example.com/database": "shop",
        }},
        "spec": {"resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}},
    })
}

#[tokio::test]
async fn larger_storage_grows_the_claims_not_the_template() {
    let h = Harness::new(&database("shop"));
    let mut db = ready_database(&h, &database("shop")).await;
    h.fake.put(CLAIM, claim_of_1gi());
    db.spec.storage.size = "2Gi".into();
    db.metadata.generation = Some(2);
    h.fake.forget_requests();

    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        h.write_lines(),
        [
            format!("PATCH {CLAIM}{APPLY}"),
            format!("PATCH {DB}/status{APPLY}")
        ],
        "the StatefulSet keeps its claim template; no Event while the phase stays Ready"
    );
    let claim = h.body_of("PATCH", CLAIM);
    assert_eq!(
        claim["spec"],
        json!({"resources": {"requests": {"storage": "2Gi"}}})
    );
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Ready");
    assert_eq!(
        condition(&status, "Progressing")["reason"],
        "ExpandingVolumes"
    );
}

#[tokio::test]
async fn refused_volume_growth_is_reported_once_and_not_retried() {
    let h = Harness::new(&database("shop"));
    let mut db = ready_database(&h, &database("shop")).await;
    h.fake.put(CLAIM, claim_of_1gi());
    h.fake.fail(http::Method::PATCH, CLAIM, 422, "Invalid");
    db.spec.storage.size = "2Gi".into();
    db.metadata.generation = Some(2);
    h.fake.forget_requests();

    let action = h.reconcile(&db).await;
    assert!(matches!(action, Ok(a) if a == awaits_change()));
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Ready");
    let degraded = condition(&status, "Degraded");
    assert_eq!(degraded["reason"], "VolumeExpansionRejected");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap_or_default()
            .contains("allow volume expansion")
    );

    let db = h.refreshed(&db);
    h.fake.forget_requests();
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(h.write_lines().is_empty(), "{:#?}", h.write_lines());
}

#[tokio::test]
async fn a_physical_recovery_creates_the_first_claim_and_waits_for_its_restore_before_the_statefulset()
 {
    const CLAIM: &str = "/api/v1/namespaces/prod/persistentvolumeclaims/data-shop-0";
    let db = database_from_backup("shop", "seed");
    let h = Harness::new(&db);
    let mut physical = backup("seed", "old-shop", true);
    physical.spec.method = api::backup::BackupMethod::Physical;
    h.fake
        .put(BACKUP, serde_json::to_value(&physical).unwrap_or_default());

    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        h.write_lines(),
        [
            format!("POST {SECRETS}{CREATE}"),
            format!("PATCH {HEADLESS}{APPLY}"),
            format!("PATCH {SERVICE}{APPLY}"),
            format!("PATCH {READ_ONLY}{APPLY}"),
            format!("PATCH {ANY_INSTANCE}{APPLY}"),
            format!("PATCH {ACCOUNT}{APPLY}"),
            format!("PATCH {ROLE}{APPLY}"),
            format!("PATCH {BINDING}{APPLY}"),
            format!("PATCH {CLAIM}{APPLY}"),
            format!("PATCH {DB}/status{APPLY}"),
        ]
    );
    assert!(
        h.fake.get(STS).is_none(),
        "no server before the data is there"
    );
    let claim = h.body_of("PATCH", CLAIM);
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
    let status = h.body_of("PATCH", &format!("{DB}/status"))["status"].clone();
    assert_eq!(status["phase"], "Provisioning");
    assert_eq!(condition(&status, "Ready")["reason"], "PreparingRecovery");

    // The recovery Job is running: still no StatefulSet, and nothing new is written.
    let db = h.refreshed(&db);
    h.fake.put(
        RESTORE,
        serde_json::to_value(restore("shop", RestorePhase::Running, "")).unwrap_or_default(),
    );
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(h.fake.get(STS).is_none());

    // Prepared: the StatefulSet comes, and adopts the claim by its name.
    let db = h.refreshed(&db);
    let mut done = restore("shop", RestorePhase::Completed, "");
    if let Some(s) = done.status.as_mut() {
        s.base_backup = Some("20261206T070000Z".into());
    }
    h.fake
        .put(RESTORE, serde_json::to_value(&done).unwrap_or_default());
    h.reconcile(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(h.fake.get(STS).is_some());
    let db = h.refreshed(&db);
    let recovery = db.status.and_then(|s| s.recovery).unwrap_or_default();
    assert_eq!(
        (recovery.backup.as_str(), recovery.base_backup.as_deref()),
        ("seed", Some("20261206T070000Z"))
    );
}
