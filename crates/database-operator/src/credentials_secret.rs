//! The credentials Secret, the one owned object whose content is not derived from the
//! Database alone: its password is generated once and must never change afterwards, or the
//! server initialised with it locks every client out.
//!
//! The reconciles read the Secret from the cache, which may not show it yet when an earlier
//! reconcile created it a moment ago. So a missing Secret is created (a create fails when
//! the Secret exists, where an apply would overwrite its password), and only when the
//! create answers that it exists is it read from the API server.

use api::Database;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};

use crate::MANAGER;
use crate::apply::{self, Applied, stamp};
use crate::builders;
use crate::error::{ApplyError, Stage};

/// Makes sure `db`'s credentials Secret exists with the keys it must have; `cached` is the
/// Secret as the cache shows it.
pub async fn apply(
    client: &Client,
    db: &Database,
    namespace: &str,
    cached: Option<&Secret>,
) -> Result<Applied<Secret>, ApplyError> {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let name = api::names::credentials_secret(&db.name_any());
    let failed = |source| ApplyError::Apply {
        stage: Stage::Secret,
        name: name.clone(),
        source,
    };
    let observed = match cached {
        Some(secret) => secret.clone(),
        None => {
            let new = stamp(
                builders::credentials_secret(db, &builders::generate_password()),
                Stage::Secret,
            )?;
            let params = PostParams {
                field_manager: Some(MANAGER.to_owned()),
                ..PostParams::default()
            };
            match secrets.create(&params, &new).await {
                Ok(created) => return Ok(Applied::Patched(created)),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    secrets.get(&name).await.map_err(failed)?
                }
                Err(source) => return Err(failed(source)),
            }
        }
    };
    let password = match builders::password_of(&observed) {
        Some(password) => password,
        // The Pods cannot start without the key, so no PostgreSQL was initialised with an
        // earlier password that a new one would lock out.
        None => {
            tracing::warn!(secret = %name, "credentials Secret has no password; generating one");
            builders::generate_password()
        }
    };
    let desired = builders::credentials_secret(db, &password);
    apply::apply(client, namespace, desired, Some(&observed), Stage::Secret).await
}
