//! A real S3 server (s3s-fs: the S3 protocol over a local directory) on
//! 127.0.0.1 inside the test process, with SigV4 authentication. It can be
//! stopped and started again on the same address over the same directory, as
//! a store that goes down and comes back, and made to misbehave
//! ([`Tampering`]).

pub use super::tamper::Tampering;
use super::tamper::TamperingStore;
use backup_data::storage::S3Config;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use secret::SecretString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub const BUCKET: &str = "backups";
const ACCESS_KEY: &str = "test-access-key";
const SECRET_KEY: &str = "test-secret-key-5d1c";

pub struct S3Server {
    root: TempDir,
    address: SocketAddr,
    endpoint: String,
    tampering: Tampering,
    artifact_downloads: Arc<AtomicUsize>,
    /// The accept loop; `None` while stopped.
    server: Option<JoinHandle<()>>,
}

impl S3Server {
    pub async fn start() -> Self {
        Self::start_tampering(Tampering::None).await
    }

    /// A server listening on `ip` instead of 127.0.0.1: the host's address on the cluster's
    /// bridge, where Pods (an archiver, a backup Job) reach it too.
    pub async fn start_on(ip: std::net::IpAddr) -> Self {
        Self::start_at(Tampering::None, SocketAddr::new(ip, 0)).await
    }

    pub async fn start_tampering(tampering: Tampering) -> Self {
        Self::start_at(tampering, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    async fn start_at(tampering: Tampering, bind: SocketAddr) -> Self {
        let root = tempfile::Builder::new()
            .prefix("s3-fixture-")
            .tempdir()
            .unwrap();
        // s3s-fs keeps each bucket as a folder under its root.
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let listener = TcpListener::bind(bind).await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut server = Self {
            root,
            address,
            endpoint: format!("http://{address}"),
            tampering,
            artifact_downloads: Arc::default(),
            server: None,
        };
        server.serve(listener);
        server
    }

    /// Stops listening and drops every open connection mid-request, as a server
    /// that crashed or lost its network would; clients then get refused.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            // Returns once the listener and the connections are dropped.
            let _ = server.await;
        }
    }

    /// Starts again on the same address, over the same directory, as a
    /// restarted server would (s3s-fs keeps all its state there).
    pub async fn restart(&mut self) {
        assert!(self.server.is_none(), "the server is running");
        let listener = TcpListener::bind(self.address)
            .await
            .unwrap_or_else(|error| panic!("cannot listen on {} again: {error}", self.address));
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let filesystem = s3s_fs::FileSystem::new(self.root.path()).unwrap();
        let store =
            TamperingStore::new(filesystem, self.tampering, self.artifact_downloads.clone());
        let mut builder = S3ServiceBuilder::new(store);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        self.server = Some(tokio::spawn(async move {
            // Owned here, so aborting the loop also drops every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        let service = service.clone();
                        connections.spawn(async move {
                            let _ = ConnectionBuilder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(socket), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next() => {}
                }
            }
        }));
    }

    /// How many times an artifact (`.../dump.pgdump`) was downloaded.
    pub fn artifact_downloads(&self) -> usize {
        self.artifact_downloads.load(Ordering::SeqCst)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint.clone()),
            bucket: BUCKET.into(),
            prefix: prefix.into(),
            region: "us-east-1".into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SecretString::new(SECRET_KEY),
            path_style: true,
            allow_http: false,
            // The smallest part S3 allows, so test dumps span several parts.
            part_size_bytes: 5 * 1024 * 1024,
            retry_timeout: Duration::from_secs(10),
        }
    }

    /// Environment for the `backup-operator` binary to use this server.
    pub fn env(&self, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("S3_ENDPOINT", self.endpoint.clone()),
            ("S3_BUCKET", BUCKET.into()),
            ("S3_PREFIX", prefix.into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            // The smallest part S3 allows, so a test dump spans several parts.
            ("S3_PART_SIZE_MIB", "5".into()),
        ]
    }

    /// The access key id and secret key the server accepts, for a Kubernetes Secret.
    pub fn credentials(&self) -> (&'static str, &'static str) {
        (ACCESS_KEY, SECRET_KEY)
    }

    /// The file that holds an object's bytes.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }

    /// Keys of all objects in the bucket, sorted: what a client would see.
    pub fn keys(&self) -> Vec<String> {
        let bucket = self.root.path().join(BUCKET);
        let mut keys: Vec<String> = super::files_under(&bucket)
            .into_iter()
            .map(|path| path.strip_prefix(&bucket).unwrap().display().to_string())
            .collect();
        keys.sort();
        keys
    }

    /// Parts of multipart uploads that were neither completed nor aborted.
    pub fn pending_upload_parts(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| is_upload_part(path))
            .collect()
    }
}

fn is_upload_part(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.starts_with(".upload_id-") && name.contains(".part-")
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}
