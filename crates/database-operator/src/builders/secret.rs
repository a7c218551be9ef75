//! The credentials Secret clients and the PostgreSQL container read.
//!
//! The password is generated once, when the Secret does not exist yet, and read back from
//! the Secret ever after: PostgreSQL stores it in the data volume on first start, so a new
//! password would lock every client out. It never appears in logs, Events or conditions.

use std::collections::BTreeMap;

use api::{Database, SecretString, names};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use rand::Rng;
use rand::distr::Alphanumeric;

use super::owned_meta;

/// Length of generated passwords: 32 alphanumeric characters carry about 190 bits.
pub const PASSWORD_LENGTH: usize = 32;

/// A fresh password from the thread-local CSPRNG (ChaCha, seeded from the OS). Alphanumeric
/// only, so it can be pasted into a connection URL without escaping.
pub fn generate_password() -> SecretString {
    let password: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(PASSWORD_LENGTH)
        .map(char::from)
        .collect();
    SecretString::from(password)
}

/// The password an existing credentials Secret holds, if it holds a usable one.
pub fn password_of(secret: &Secret) -> Option<SecretString> {
    let bytes = secret.data.as_ref()?.get(names::SECRET_PASSWORD)?;
    let password = String::from_utf8(bytes.0.clone()).ok()?;
    (!password.is_empty()).then(|| SecretString::from(password))
}

/// The credentials Secret of `db`, holding `password`.
pub fn credentials_secret(db: &Database, password: &SecretString) -> Secret {
    let name = db.name_any();
    let namespace = db.namespace().unwrap_or_default();
    let entries = [
        (names::SECRET_USERNAME, db.spec.username.clone()),
        (names::SECRET_PASSWORD, password.expose_secret().to_string()),
        (names::SECRET_DATABASE, db.spec.database_name.clone()),
        (names::SECRET_HOST, names::service_host(&name, &namespace)),
        (names::SECRET_PORT, names::POSTGRES_PORT.to_string()),
        (
            names::SECRET_READ_ONLY_HOST,
            names::read_only_host(&name, &namespace),
        ),
    ];
    Secret {
        metadata: owned_meta(db, names::credentials_secret(&name)),
        type_: Some("Opaque".to_string()),
        // `data` rather than `stringData`: the API server never stores `stringData`, so an
        // applied `stringData` would not be what a later read sees.
        data: Some(
            entries
                .into_iter()
                .map(|(key, value)| (key.to_string(), ByteString(value.into_bytes())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;

    fn value(secret: &Secret, key: &str) -> String {
        let data = secret.data.clone().unwrap_or_default();
        String::from_utf8(data[key].0.clone()).unwrap_or_default()
    }

    #[test]
    fn secret_holds_everything_a_client_needs() {
        let secret = credentials_secret(&database("shop"), &"s3cret".into());
        assert_eq!(secret.metadata.name.as_deref(), Some("shop-credentials"));
        let rows = [
            ("username", "shop_owner"),
            ("password", "s3cret"),
            ("database", "shop"),
            ("host", "shop.prod.svc"),
            ("port", "5432"),
            ("readOnlyHost", "shop-ro.prod.svc"),
        ];
        for (key, want) in rows {
            assert_eq!(value(&secret, key), want, "{key}");
        }
        assert_eq!(secret.data.map(|d| d.len()), Some(rows.len()));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = generate_password().expose_secret().to_string();
        let b = generate_password().expose_secret().to_string();
        assert_eq!(a.len(), PASSWORD_LENGTH);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn existing_password_is_read_back() {
        let secret = credentials_secret(&database("shop"), &"kept".into());
        assert_eq!(password_of(&secret), Some("kept".into()));
        let empty = credentials_secret(&database("shop"), &"".into());
        assert_eq!(password_of(&empty), None);
        assert_eq!(password_of(&Secret::default()), None);
    }
}
