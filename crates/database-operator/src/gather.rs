//! Step 1: what a reconcile of one Database depends on, from the controller's caches
//! ([`crate::caches`]): no request to the API server.

use api::{Backup, Database, Restore, names};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use runtime::cached::{decoded, get, select};
use std::fmt::Debug;

use crate::builders::{self, statefulset::DATA_VOLUME};
use crate::caches::Caches;
use crate::endpoint_slices::SERVICE_NAME_LABEL;
use crate::error::GatherError;
use api::quantity;

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
    pub read_only_service: Option<Service>,
    pub any_instance_service: Option<Service>,
    pub statefulset: Option<StatefulSet>,
    /// The PostgreSQL Pods, read only when the StatefulSet exists.
    pub pods: Vec<Pod>,
    /// The data claims, read only when `storage.size` outgrew the claim template.
    pub claims: Vec<PersistentVolumeClaim>,
    /// The claim `data-<db>-0`, read only before the StatefulSet exists with a `backupRef`
    /// (a physical recovery creates it first).
    pub first_claim: Option<PersistentVolumeClaim>,
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
            .field("read_only_service", &self.read_only_service)
            .field("any_instance_service", &self.any_instance_service)
            .field("statefulset", &self.statefulset)
            .field("pods", &self.pods)
            .field("claims", &self.claims)
            .field("first_claim", &self.first_claim)
            .field("client_slices", &self.client_slices)
            .finish()
    }
}

/// What the caches hold for `db` (in `namespace`).
pub fn gather(caches: &Caches, db: &Database, namespace: &str) -> Result<Gathered, GatherError> {
    let name = db.name_any();
    let backup = match &db.spec.backup_ref {
        Some(backup_ref) => get(&caches.backups, namespace, &backup_ref.name)?,
        None => None,
    };
    let restore = match &db.spec.backup_ref {
        Some(_) => decoded(&caches.restores, namespace, &names::initial_restore(&name))?,
        None => None,
    };
    // A Restore with the reserved name that restores into another Database is not ours.
    let restore = restore.filter(|r| r.spec.database_ref.name == name);
    let mut gathered = Gathered {
        backup,
        restore,
        secret: caches
            .secrets
            .get(namespace, &names::credentials_secret(&name))?,
        headless_service: caches
            .services
            .get(namespace, &names::headless_service(&name))?,
        client_service: caches
            .services
            .get(namespace, &names::client_service(&name))?,
        read_only_service: caches
            .services
            .get(namespace, &names::read_only_service(&name))?,
        any_instance_service: caches
            .services
            .get(namespace, &names::any_instance_service(&name))?,
        statefulset: caches
            .statefulsets
            .get(namespace, &names::statefulset(&name))?,
        ..Gathered::default()
    };
    let Some(sts) = &gathered.statefulset else {
        if db.spec.backup_ref.is_some() {
            gathered.first_claim = get(&caches.claims, namespace, &names::data_claim(&name, 0))?;
        }
        return Ok(gathered);
    };
    let selector = builders::selector_labels(db);
    let selected = |labels: &std::collections::BTreeMap<String, String>| {
        selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    };
    gathered.pods = select(&caches.pods, namespace, |p| selected(p.labels()))?;
    if needs_expansion(db, sts) {
        let prefix = format!("{DATA_VOLUME}-{name}-");
        gathered.claims = select(&caches.claims, namespace, |c| {
            selected(c.labels()) && c.name_any().starts_with(&prefix)
        })?;
    }
    let client_service = names::client_service(&name);
    gathered.client_slices = select(&caches.slices, namespace, |s| {
        s.labels().get(SERVICE_NAME_LABEL) == Some(&client_service)
    })?;
    Ok(gathered)
}

/// True when `storage.size` is larger than the claim template the StatefulSet was created
/// with, so the claims themselves must grow.
pub fn needs_expansion(db: &Database, sts: &StatefulSet) -> bool {
    let wanted = quantity::bytes(&db.spec.storage.size);
    let template = builders::claim_size_of(sts).and_then(|s| quantity::bytes(&s));
    matches!((wanted, template), (Some(w), Some(t)) if w > t)
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
        let sts = statefulset(
            &db,
            claim_templates(&db, None),
            &crate::builders::fixtures::settings(),
            None,
        );
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
