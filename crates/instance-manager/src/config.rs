//! What the instance manager is told by its Pod's environment (set by the database-operator,
//! `builders::statefulset`).

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(Debug, Clone)]
pub struct Config {
    /// This Pod's name: the instance's identity in the Lease and in slot names.
    pub pod: String,
    pub namespace: String,
    /// The Database this instance belongs to (a switchover is asked for on it).
    pub database: String,
    /// The StatefulSet (its replicas are the instances) and its headless Service (their DNS).
    pub statefulset: String,
    pub headless_service: String,
    /// The read-write Service: where standbys clone from and stream from.
    pub primary_service: String,
    /// The read-write Service's cluster IP, which standbys connect to without a DNS lookup.
    pub primary_address: Option<String>,
    pub lease: String,
    pub pgdata: PathBuf,
    /// The superuser the image's initdb created (POSTGRES_USER); replication uses it too.
    pub user: String,
    /// The database the image's initdb created (POSTGRES_DB); a recovered cluster gets it
    /// when the source had none of that name.
    pub database_name: Option<String>,
    /// The mounted Secret's password, for the files libpq reads it from (never an argument).
    pub password_file: PathBuf,
    /// A directory of the Pod's own (emptyDir): the hba file, the password file for libpq.
    pub work_dir: PathBuf,
    /// Where PostgreSQL puts its socket; the manager's own queries connect there.
    pub socket_dir: PathBuf,
    /// The limit on WAL kept for a lagging standby's slot (`max_slot_wal_keep_size`).
    pub max_slot_wal_keep_size: String,
    /// WAL kept whatever the slots (`wal_keep_size`), for a former primary's rewind; a Pod
    /// of an older template has none, and keeps PostgreSQL's default.
    pub wal_keep_size: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
        Ok(Config {
            pod: var("POD_NAME")?,
            namespace: var("POD_NAMESPACE")?,
            database: var("PGOP_DATABASE")?,
            statefulset: var("PGOP_STATEFULSET")?,
            headless_service: var("PGOP_HEADLESS_SERVICE")?,
            primary_service: var("PGOP_PRIMARY_SERVICE")?,
            primary_address: std::env::var("PGOP_PRIMARY_ADDRESS")
                .ok()
                .filter(|ip| !ip.is_empty()),
            lease: var("PGOP_LEASE")?,
            pgdata: var("PGDATA")?.into(),
            user: var("POSTGRES_USER")?,
            database_name: std::env::var("POSTGRES_DB").ok(),
            password_file: var("PGOP_PASSWORD_FILE")?.into(),
            work_dir: var("PGOP_WORK_DIR")?.into(),
            socket_dir: var("PGOP_SOCKET_DIR")?.into(),
            max_slot_wal_keep_size: var("PGOP_MAX_SLOT_WAL_KEEP_SIZE")?,
            wal_keep_size: std::env::var("PGOP_WAL_KEEP_SIZE").ok(),
        })
    }

    /// The ordinal of this Pod in its StatefulSet (`<sts>-<n>`).
    pub fn ordinal(&self) -> Option<u32> {
        self.pod
            .strip_prefix(&format!("{}-", self.statefulset))
            .and_then(|n| n.parse().ok())
    }

    /// The DNS name of instance `pod`, through the headless Service (it publishes Pods that
    /// are not ready too).
    pub fn instance_host(&self, pod: &str) -> String {
        format!("{pod}.{}.{}.svc", self.headless_service, self.namespace)
    }

    pub fn primary_host(&self) -> String {
        format!("{}.{}.svc", self.primary_service, self.namespace)
    }

    /// The libpq `host` (and `hostaddr`) of the primary, for every connection to it: with
    /// the read-write Service's address known, no DNS lookup, which on a node just back or
    /// with a DNS replica on a lost node can fail or hang. `host` stays for the password
    /// file's lookup.
    pub fn primary_target(&self) -> String {
        let address = self
            .primary_address
            .as_ref()
            .map(|ip| format!(" hostaddr={ip}"))
            .unwrap_or_default();
        format!("host={}{address}", self.primary_host())
    }

    pub fn hba_file(&self) -> PathBuf {
        self.work_dir.join("pg_hba.conf")
    }

    pub fn passfile(&self) -> PathBuf {
        self.work_dir.join("pgpass")
    }

    pub fn slot(&self) -> String {
        api::names::replication_slot(&self.pod)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The configuration of instance `shop-0` of Database `shop` in `prod`.
    pub fn config() -> Config {
        Config {
            pod: "shop-0".into(),
            namespace: "prod".into(),
            database: "shop".into(),
            statefulset: "shop".into(),
            headless_service: "shop-headless".into(),
            primary_service: "shop".into(),
            primary_address: None,
            lease: "shop-primary".into(),
            pgdata: "/var/lib/postgresql/data/pgdata".into(),
            user: "shop_owner".into(),
            database_name: Some("shop".into()),
            password_file: "/etc/pgop/credentials/password".into(),
            work_dir: "/controller".into(),
            socket_dir: "/var/run/postgresql".into(),
            max_slot_wal_keep_size: "1GB".into(),
            wal_keep_size: Some("256MB".into()),
        }
    }

    #[test]
    fn the_primary_is_reached_by_address_when_known() {
        let known = Config {
            primary_address: Some("10.96.0.42".into()),
            ..config()
        };
        assert_eq!(
            known.primary_target(),
            "host=shop.prod.svc hostaddr=10.96.0.42"
        );
        assert_eq!(config().primary_target(), "host=shop.prod.svc");
    }
}
