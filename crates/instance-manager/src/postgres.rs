//! PostgreSQL as a child process, and the few questions the manager asks it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::Config;
use crate::lease::STOP_WITHIN;

/// How long a fast shutdown may take before it becomes an immediate one.
const FAST_STOP_WITHIN: Duration = Duration::from_secs(30);

/// The server settings every instance runs with, whatever its role: replication needs them
/// on the primary, and a standby may become one.
pub fn settings(config: &Config) -> Vec<(String, String)> {
    // `hostaddr` spares the WAL receiver a DNS lookup: one that waits on a DNS replica of a
    // lost node would hold up a promotion, which waits for the receiver to stop. `host` stays
    // for the password file's lookup.
    let address = config
        .primary_address
        .as_ref()
        .map(|ip| format!(" hostaddr={ip}"))
        .unwrap_or_default();
    let conninfo = format!(
        "host={}{address} port={} user={} passfile={} application_name={} connect_timeout=2",
        config.primary_host(),
        api::names::POSTGRES_PORT,
        config.user,
        config.passfile().display(),
        config.pod,
    );
    [
        ("hba_file", config.hba_file().display().to_string()),
        (
            "unix_socket_directories",
            config.socket_dir.display().to_string(),
        ),
        // pg_rewind needs it to bring a former primary back as a standby.
        ("wal_log_hints", "on".to_string()),
        (
            "max_slot_wal_keep_size",
            config.max_slot_wal_keep_size.clone(),
        ),
        ("hot_standby", "on".to_string()),
        ("hot_standby_feedback", "on".to_string()),
        // A dead peer is noticed in seconds, and a standby reconnects quickly after failover.
        ("wal_sender_timeout", "5s".to_string()),
        ("wal_receiver_timeout", "5s".to_string()),
        ("wal_retrieve_retry_interval", "1s".to_string()),
        ("primary_conninfo", conninfo),
        ("primary_slot_name", config.slot()),
        ("recovery_target_timeline", "latest".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The hba file every instance uses: the socket (inside the Pod only) is trusted, everything
/// over TCP authenticates with a password, replication included.
pub const HBA: &str = "\
local all all trust
host all all all scram-sha-256
host replication all all scram-sha-256
";

/// Writes the hba file and libpq's password file (mode 0600, as libpq requires), from the
/// mounted Secret.
pub fn write_files(config: &Config) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::write(config.hba_file(), HBA).context("writing pg_hba.conf")?;
    let password = std::fs::read_to_string(&config.password_file)
        .with_context(|| format!("reading {}", config.password_file.display()))?;
    let escaped = password
        .trim_end_matches('\n')
        .replace('\\', "\\\\")
        .replace(':', "\\:");
    let line = format!("*:*:*:{}:{escaped}\n", config.user.replace(':', "\\:"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(config.passfile())
        .context("writing the libpq password file")?;
    std::io::Write::write_all(&mut file, line.as_bytes()).context("writing the libpq password file")
}

/// How a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The postmaster exited by itself, after every backend had.
    Cleanly,
    /// It was killed: backends it leaves behind may still hold its shared memory, and only a
    /// new container (a new PID namespace) is sure to be rid of them.
    Killed,
}

pub struct Server {
    child: Child,
    pgdata: std::path::PathBuf,
}

impl Server {
    /// Runs the image's entrypoint (initdb on an empty data directory, as the official image
    /// does) with our settings; it execs `postgres`, which stays this process's child.
    pub async fn start(config: &Config) -> Result<Server> {
        let mut command = Command::new("docker-entrypoint.sh");
        command.arg("postgres");
        for (name, value) in settings(config) {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .context("starting docker-entrypoint.sh postgres")?;
        tracing::info!(pid = child.id(), "PostgreSQL started");
        Ok(Server {
            child,
            pgdata: config.pgdata.clone(),
        })
    }

    /// Waits until the server exits; its exit status as a message.
    pub async fn exited(&mut self) -> String {
        match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        }
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// Fencing: an immediate shutdown (SIGQUIT: every backend exits at once, nothing more is
    /// committed), then SIGKILL if the postmaster is still there after [`STOP_WITHIN`].
    pub async fn stop_now(&mut self) -> Stopped {
        self.signal(Signal::SIGQUIT);
        if tokio::time::timeout(STOP_WITHIN, self.child.wait())
            .await
            .is_ok()
        {
            return Stopped::Cleanly;
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        Stopped::Killed
    }

    /// A fast shutdown (SIGINT: clients are disconnected, a checkpoint written), immediate
    /// after [`FAST_STOP_WITHIN`].
    pub async fn stop_fast(&mut self) -> Stopped {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return Stopped::Cleanly;
        }
        self.signal(Signal::SIGINT);
        if tokio::time::timeout(FAST_STOP_WITHIN, self.child.wait())
            .await
            .is_err()
        {
            return self.stop_now().await;
        }
        Stopped::Cleanly
    }

    /// Ends recovery: the standby becomes a primary on a new timeline.
    pub async fn promote(&self) -> Result<()> {
        let status = Command::new("pg_ctl")
            .args(["promote", "-w", "-t", "60", "-D"])
            .arg(&self.pgdata)
            .status()
            .await
            .context("running pg_ctl promote")?;
        if !status.success() {
            bail!("pg_ctl promote failed ({status})");
        }
        Ok(())
    }
}

/// Runs `sql` on the local server over its socket and returns its output.
pub async fn query_local(config: &Config, sql: &str) -> Result<String> {
    let mut psql = psql(config, &config.socket_dir.display().to_string(), sql);
    psql.env("PGCONNECT_TIMEOUT", "2");
    run(psql, "the local server").await
}

/// Runs `sql` on another instance over TCP, with the password from libpq's password file.
pub async fn query_remote(config: &Config, host: &str, sql: &str) -> Result<String> {
    let mut psql = psql(config, host, sql);
    psql.arg("-w")
        .env("PGPASSFILE", config.passfile())
        .env("PGCONNECT_TIMEOUT", "1");
    run(psql, host).await
}

/// psql as the Database's superuser on `host` (a socket directory or a host name), quiet,
/// unaligned, stopping at the first error.
fn psql(config: &Config, host: &str, sql: &str) -> Command {
    let mut command = Command::new("psql");
    command
        .args([
            "-X",
            "-Atq",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
            "-U",
        ])
        .arg(&config.user)
        .arg("-h")
        .arg(host)
        .arg("-c")
        .arg(sql);
    command
}

async fn run(mut psql: Command, server: &str) -> Result<String> {
    let output = psql.output().await.context("running psql")?;
    if !output.status.success() {
        bail!(
            "{server}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A WAL position (`X/Y`) as a number, to compare.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(primary_address: Option<&str>) -> Config {
        Config {
            pod: "shop-1".into(),
            namespace: "prod".into(),
            database: "shop".into(),
            statefulset: "shop".into(),
            headless_service: "shop-headless".into(),
            primary_service: "shop".into(),
            primary_address: primary_address.map(String::from),
            lease: "shop-primary".into(),
            pgdata: "/data".into(),
            user: "postgres".into(),
            password_file: "/etc/pw".into(),
            work_dir: "/controller".into(),
            socket_dir: "/run/pg".into(),
            max_slot_wal_keep_size: "512MB".into(),
        }
    }

    fn conninfo(config: &Config) -> String {
        settings(config)
            .into_iter()
            .find(|(name, _)| name == "primary_conninfo")
            .map(|(_, value)| value)
            .unwrap()
    }

    #[test]
    fn standbys_connect_to_the_primary_address_without_a_lookup_when_known() {
        let with = conninfo(&config(Some("10.96.0.42")));
        assert!(
            with.starts_with("host=shop.prod.svc hostaddr=10.96.0.42 port=5432 "),
            "{with}"
        );
        let without = conninfo(&config(None));
        assert!(
            without.starts_with("host=shop.prod.svc port=5432 "),
            "{without}"
        );
        assert!(!without.contains("hostaddr"));
    }

    #[test]
    fn lsns_compare_as_numbers() {
        assert_eq!(parse_lsn("0/3000148"), Some(0x3000148));
        assert!(parse_lsn("1/0").unwrap() > parse_lsn("0/FFFFFFFF").unwrap());
        assert_eq!(parse_lsn(""), None);
        assert_eq!(parse_lsn("nonsense"), None);
    }
}
