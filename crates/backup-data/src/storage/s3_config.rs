//! How to reach an S3-compatible bucket: the settings, checked before any
//! request is sent, and the client built from them.

use super::StorageError;
use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, RetryConfig};
use secret::SecretString;
use std::net::IpAddr;
use std::time::Duration;

/// S3 refuses parts under 5 MiB except the last one.
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `https://host[:port]`; `None` means AWS itself, for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Key prefix before `<database>/`; slashes at either end are ignored.
    pub prefix: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`; most
    /// S3-compatible servers (MinIO, Ceph) need it and AWS accepts it.
    pub path_style: bool,
    /// Allow `http://` endpoints; loopback endpoints are always allowed.
    pub allow_http: bool,
    pub part_size_bytes: usize,
    /// How long one request is retried before its error is reported.
    pub retry_timeout: Duration,
}

impl S3Config {
    pub const DEFAULT_PART_SIZE_BYTES: usize = 16 * 1024 * 1024;
    pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(120);
}

/// The client's settings, checked before anything is sent.
pub(super) fn client_builder(config: &S3Config) -> Result<AmazonS3Builder, StorageError> {
    let invalid = |reason: String| StorageError::InvalidS3Config { reason };
    if config.bucket.is_empty() {
        return Err(invalid("the bucket name is empty".into()));
    }
    if config.part_size_bytes < MIN_PART_SIZE {
        return Err(invalid(format!(
            "part size {} bytes is below S3's minimum of 5 MiB",
            config.part_size_bytes
        )));
    }
    let (allow_http, sign_payload) = match &config.endpoint {
        Some(endpoint) => {
            let loopback = is_loopback_endpoint(endpoint)?;
            let plain_http = endpoint.starts_with("http://");
            if plain_http && !(config.allow_http || loopback) {
                return Err(invalid(format!(
                    "endpoint {endpoint} is plain HTTP; use https:// or set {}=true to send backups unencrypted",
                    backup_job::env::S3_ALLOW_HTTP
                )));
            }
            (
                config.allow_http || loopback,
                signs_payload(plain_http, loopback),
            )
        }
        None => (false, false),
    };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(config.secret_access_key.expose_secret())
        .with_virtual_hosted_style_request(!config.path_style)
        // Runs are deleted one key at a time anyway; a single-object DELETE
        // works on every S3-compatible store, DeleteObjects does not.
        .with_disable_bulk_delete(true)
        .with_unsigned_payload(!sign_payload)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(allow_http)
                .with_connect_timeout(Duration::from_secs(10))
                // One part at a slow 1 MiB/s still fits.
                .with_timeout(Duration::from_secs(300)),
        )
        .with_retry(RetryConfig {
            retry_timeout: config.retry_timeout,
            ..RetryConfig::default()
        });
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    Ok(builder)
}

/// Whether each request signs the SHA-256 of its body. Over TLS, or without
/// leaving the machine, the transport already keeps the bytes intact and the
/// ETag check verifies what was stored, so hashing every byte once more here
/// and once more at the store only takes CPU from `pg_dump`. Plain HTTP to
/// another host has nothing else guarding the data on the way.
fn signs_payload(plain_http: bool, loopback: bool) -> bool {
    plain_http && !loopback
}

/// Whether plain HTTP to this endpoint stays on this machine.
fn is_loopback_endpoint(endpoint: &str) -> Result<bool, StorageError> {
    let url = reqwest::Url::parse(endpoint).map_err(|error| StorageError::InvalidS3Config {
        reason: format!("endpoint {endpoint:?} is not a URL: {error}"),
    })?;
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

/// reqwest is built without a default TLS crypto provider so that the whole
/// workspace uses ring, as kube does; the process-wide default must be set
/// once before the first client is built. A second call finds it set.
pub(super) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::storage::S3Store;
    use object_store::aws::AmazonS3ConfigKey;

    pub(in crate::storage) fn config(endpoint: &str, allow_http: bool) -> S3Config {
        S3Config {
            endpoint: Some(endpoint.to_owned()),
            bucket: "backups".into(),
            prefix: "/team/".into(),
            region: "us-east-1".into(),
            access_key_id: "key".into(),
            secret_access_key: SecretString::new("secret"),
            path_style: true,
            allow_http,
            part_size_bytes: S3Config::DEFAULT_PART_SIZE_BYTES,
            retry_timeout: S3Config::DEFAULT_RETRY_TIMEOUT,
        }
    }

    #[test]
    fn plain_http_is_refused_unless_loopback_or_allowed() {
        let refused = S3Store::new(config("http://minio.storage.svc:9000", false)).unwrap_err();
        assert!(
            refused.to_string().contains("S3_ALLOW_HTTP=true"),
            "{refused}"
        );
        S3Store::new(config("http://minio.storage.svc:9000", true)).unwrap();
        S3Store::new(config("http://127.0.0.1:9000", false)).unwrap();
        S3Store::new(config("http://[::1]:9000", false)).unwrap();
        S3Store::new(config("http://localhost:9000", false)).unwrap();
        S3Store::new(config("https://s3.example.com", false)).unwrap();
    }

    #[test]
    fn only_plain_http_to_another_host_signs_the_payload() {
        let unsigned = |endpoint: &str| {
            client_builder(&config(endpoint, true))
                .unwrap()
                .get_config_value(&AmazonS3ConfigKey::UnsignedPayload)
        };
        assert_eq!(
            unsigned("http://minio.storage.svc:9000").as_deref(),
            Some("false")
        );
        assert_eq!(unsigned("http://127.0.0.1:9000").as_deref(), Some("true"));
        assert_eq!(unsigned("https://s3.example.com").as_deref(), Some("true"));
    }

    #[test]
    fn objects_are_deleted_one_request_each() {
        let builder = client_builder(&config("https://s3.example.com", false)).unwrap();
        assert_eq!(
            builder
                .get_config_value(&AmazonS3ConfigKey::DisableBulkDelete)
                .as_deref(),
            Some("true")
        );
    }

    #[test]
    fn debug_output_hides_the_secret_key() {
        let rendered = format!("{:?}", config("https://s3.example.com", false));
        assert!(!rendered.contains("\"secret\""), "{rendered}");
    }
}
