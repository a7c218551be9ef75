//! Step 1: read everything a reconcile of one Database depends on.
//!
//! kube's `Controller::owns` and `watches` only trigger reconciles (owned objects are watched
//! as metadata, and no cache is kept), so the objects are read here with direct GETs: a
//! handful of reads per reconcile, and always the current state, which matters for the
//! password (a stale cache that missed the Secret would make a second one). The Database
//! itself comes from the controller's cache.

use api::{Backup, Database, Restore, names};
use futures::try_join;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

use crate::builders::{self, statefulset::DATA_VOLUME};
use crate::endpoint_slices::SERVICE_NAME_LABEL;
use crate::error::GatherError;
use crate::quantity;

/// What the cluster holds for one Database.
#[derive(Clone, Default)]
pub struct Gathered {
    /// The Backup `spec.backupRef` names.
    pub backup: Option<Backup>,
    /// The initial Restore the backup-operator runs into this Database.
    pub restore: Option<Restore>,
    pub secret: Option<Secret>,
    pub headless_service: Option<Service>,
    pub client_service: Option<Service>,
    pub statefulset: Option<StatefulSet>,
    /// The PostgreSQL Pods, read only when the StatefulSet exists.
    pub pods: Vec<Pod>,
    /// The data claims, read only when `storage.size` outgrew the claim template.
    pub claims: Vec<PersistentVolumeClaim>,
    /// The client Service's EndpointSlices, read only when the StatefulSet exists.
    pub client_slices: Vec<EndpointSlice>,
}

/// Like a derived `Debug`, but the credentials Secret shows only its metadata: its data
/// holds the password, and `ByteString` prints bytes as they are.
impl Debug for Gathered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gathered")
            .field("backup", &self.backup)
            .field("restore", &self.restore)
            .field("secret", &self.secret.as_ref().map(|s| &s.metadata))
            .field("headless_service", &self.headless_service)
            .field("client_service", &self.client_service)
            .field("statefulset", &self.statefulset)
            .field("pods", &self.pods)
            .field("claims", &self.claims)
            .field("client_slices", &self.client_slices)
            .finish()
    }
}

/// Reads what `db` (in `namespace`) depends on.
pub async fn gather(
    client: &Client,
    db: &Database,
    namespace: &str,
) -> Result<Gathered, GatherError> {
    let name = db.name_any();
    let backup_ref = db.spec.backup_ref.as_ref().map(|r| r.name.clone());
    let initial_restore = backup_ref.as_ref().map(|_| names::initial_restore(&name));
    let secret = names::credentials_secret(&name);
    let headless = names::headless_service(&name);
    let client_svc = names::client_service(&name);
    let sts = names::statefulset(&name);

    let (backup, restore, secret, headless_service, client_service, statefulset) = try_join!(
        get_opt::<Backup>(client, namespace, backup_ref.as_deref()),
        get_opt::<Restore>(client, namespace, initial_restore.as_deref()),
        get_opt::<Secret>(client, namespace, Some(&secret)),
        get_opt::<Service>(client, namespace, Some(&headless)),
        get_opt::<Service>(client, namespace, Some(&client_svc)),
        get_opt::<StatefulSet>(client, namespace, Some(&sts)),
    )?;
    // A Restore with the reserved name that restores into another Database is not ours.
    let restore = restore.filter(|r| r.spec.database_ref.name == name);

    let mut gathered = Gathered {
        backup,
        restore,
        secret,
        headless_service,
        client_service,
        statefulset,
        ..Gathered::default()
    };
    let Some(sts) = &gathered.statefulset else {
        return Ok(gathered);
    };
    let selector = builders::selector_string(db);
    let grows = needs_expansion(db, sts);
    let slice_selector = format!("{SERVICE_NAME_LABEL}={client_svc}");
    let (pods, claims, client_slices) = try_join!(
        list::<Pod>(client, namespace, &selector, true),
        list::<PersistentVolumeClaim>(client, namespace, &selector, grows),
        list::<EndpointSlice>(client, namespace, &slice_selector, true),
    )?;
    let prefix = format!("{DATA_VOLUME}-{name}-");
    gathered.pods = pods;
    gathered.client_slices = client_slices;
    gathered.claims = claims
        .into_iter()
        .filter(|c| c.name_any().starts_with(&prefix))
        .collect();
    Ok(gathered)
}

/// True when `storage.size` is larger than the claim template the StatefulSet was created
/// with, so the claims themselves must grow.
pub fn needs_expansion(db: &Database, sts: &StatefulSet) -> bool {
    let wanted = quantity::bytes(&db.spec.storage.size);
    let template = builders::claim_size_of(sts).and_then(|s| quantity::bytes(&s));
    matches!((wanted, template), (Some(w), Some(t)) if w > t)
}

async fn get_opt<K>(
    client: &Client,
    namespace: &str,
    name: Option<&str>,
) -> Result<Option<K>, GatherError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let Some(name) = name else {
        return Ok(None);
    };
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| GatherError::Read {
            kind: K::kind(&()).into_owned(),
            name: name.to_string(),
            source,
        })
}

async fn list<K>(
    client: &Client,
    namespace: &str,
    selector: &str,
    wanted: bool,
) -> Result<Vec<K>, GatherError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    if !wanted {
        return Ok(Vec::new());
    }
    Api::<K>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .map(|list| list.items)
        .map_err(|source| GatherError::Read {
            kind: K::kind(&()).into_owned(),
            name: selector.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;
    use crate::builders::{claim_templates, credentials_secret, statefulset};

    #[test]
    fn debug_output_never_shows_the_password() {
        let password = "hunter2-in-the-secret";
        let gathered = Gathered {
            secret: Some(credentials_secret(&database("shop"), &password.into())),
            ..Gathered::default()
        };
        let text = format!("{gathered:?}");
        assert!(text.contains("shop-credentials"), "{text}");
        assert!(!text.contains(password), "{text}");
        assert!(
            !text.contains(&format!("{:?}", password.as_bytes())),
            "{text}"
        );
    }

    #[test]
    fn expansion_compares_sizes_by_value() {
        let db = database("shop");
        let sts = statefulset(&db, claim_templates(&db, None));
        let rows = [
            ("1Gi", false),
            ("1024Mi", false),
            ("2Gi", true),
            ("1.5Gi", true),
            ("junk", false),
        ];
        for (size, want) in rows {
            let mut grown = db.clone();
            grown.spec.storage.size = size.into();
            assert_eq!(needs_expansion(&grown, &sts), want, "{size}");
        }
    }
}
