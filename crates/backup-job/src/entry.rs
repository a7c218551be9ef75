//! One environment variable of a Job's container, in terms the controller maps onto
//! Kubernetes' `EnvVar` and the Job reads back from its environment. Kept free of
//! Kubernetes types so the data path can share it.

/// `NAME=value`, where the value is either written into the Job or taken from a Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvEntry {
    pub name: &'static str,
    pub value: EnvValue,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    /// Written into the Job's spec, visible to anyone who can read the Job.
    Plain(String),
    /// Read by the kubelet from a Secret when the Pod starts (`secretKeyRef`), so a
    /// credential never appears in the Job.
    FromSecret(SecretKey),
}

/// One key of one Secret in the Job's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKey {
    pub secret: String,
    pub key: String,
}

impl SecretKey {
    pub fn new(secret: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            key: key.into(),
        }
    }
}

impl EnvEntry {
    pub fn plain(name: &'static str, value: impl Into<String>) -> Self {
        Self {
            name,
            value: EnvValue::Plain(value.into()),
        }
    }

    pub fn from_secret(name: &'static str, key: &SecretKey) -> Self {
        Self {
            name,
            value: EnvValue::FromSecret(key.clone()),
        }
    }
}
