//! PostgreSQL as a child process, and the few questions the manager asks it.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
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
    // lost node would hold up a promotion, which waits for the receiver to stop.
    let conninfo = format!(
        "{} port={} user={} passfile={} application_name={} connect_timeout=2",
        config.primary_target(),
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
    .chain(
        config
            .wal_keep_size
            .clone()
            .map(|size| ("wal_keep_size", size)),
    )
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

/// The settings of a server recovering a physical Backup's data directory: the usual ones but
/// the recovery target timeline, which `prepare-recovery` fixed in `postgresql.auto.conf` (the
/// command line would override it), and without hot standby, so no client (nor the readiness
/// probe) gets in before the server has promoted.
pub fn recovery_settings(config: &Config) -> Vec<(String, String)> {
    let mut settings: Vec<_> = settings(config)
        .into_iter()
        .filter(|(name, _)| name != "recovery_target_timeline" && name != "hot_standby")
        .collect();
    settings.push(("hot_standby".to_string(), "off".to_string()));
    settings
}

/// How many of the server's last FATAL or PANIC lines are kept.
const ERRORS_KEPT: usize = 5;

pub struct Server {
    child: Child,
    pgdata: std::path::PathBuf,
    /// The server's last FATAL and PANIC lines, when its output is read (recovery only).
    errors: Option<Arc<Mutex<VecDeque<String>>>>,
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
            errors: None,
        })
    }

    /// Starts the server on a data directory prepared for recovery ([`recovery_settings`]).
    /// Its log still goes to the container's, line by line, and its FATAL and PANIC lines are
    /// kept: if it stops, they say why ([`Server::errors`]).
    pub async fn start_recovery(config: &Config) -> Result<Server> {
        let mut command = Command::new("docker-entrypoint.sh");
        command.arg("postgres");
        for (name, value) in recovery_settings(config) {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting docker-entrypoint.sh postgres for recovery")?;
        tracing::info!(pid = child.id(), "PostgreSQL started to recover");
        let errors = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(pass_on(stderr, errors.clone()));
        }
        Ok(Server {
            child,
            pgdata: config.pgdata.clone(),
            errors: Some(errors),
        })
    }

    /// The server's last FATAL and PANIC lines (recovery only), oldest first.
    pub fn errors(&self) -> Vec<String> {
        self.errors
            .as_ref()
            .map(|e| e.lock().expect("errors lock").iter().cloned().collect())
            .unwrap_or_default()
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

/// Copies the server's log to this process's stderr, keeping its FATAL and PANIC lines.
async fn pass_on(stderr: tokio::process::ChildStderr, errors: Arc<Mutex<VecDeque<String>>>) {
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{line}");
        if let Some(error) = fatal(&line) {
            let mut kept = errors.lock().expect("errors lock");
            if kept.len() == ERRORS_KEPT {
                kept.pop_front();
            }
            kept.push_back(error);
        }
    }
}

/// The message of a FATAL or PANIC log line, without its prefix (time, pid). Connections
/// the server turns away while it recovers (the manager's own polls, the readiness probe)
/// are logged as FATAL too; they say nothing about the server and are left out.
pub fn fatal(line: &str) -> Option<String> {
    const TURNED_AWAY: [&str; 4] = [
        "the database system is",
        "authentication failed",
        "no pg_hba.conf entry",
        "terminating connection",
    ];
    let message = ["FATAL:", "PANIC:"]
        .iter()
        .find_map(|level| line.find(level).map(|at| line[at..].trim().to_string()))?;
    (!TURNED_AWAY.iter().any(|t| message.contains(t))).then_some(message)
}

/// Runs `sql` on the local server over its socket, the statement on stdin: for statements
/// that carry a secret, which must not appear among any process's arguments.
pub async fn query_local_stdin(config: &Config, sql: &str) -> Result<String> {
    use tokio::io::AsyncWriteExt as _;
    let mut psql = Command::new("psql");
    psql.args([
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
    .arg(&config.socket_dir)
    .args(["-f", "-"])
    .env("PGCONNECT_TIMEOUT", "2")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = psql.spawn().context("running psql")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(sql.as_bytes())
            .await
            .context("writing to psql")?;
    }
    let output = child.wait_with_output().await.context("running psql")?;
    if !output.status.success() {
        bail!(
            "the local server: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
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
            primary_address: primary_address.map(String::from),
            ..crate::config::tests::config()
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
    fn wal_is_kept_for_a_rewind_when_the_pod_says_how_much() {
        let kept = |config: &Config| {
            settings(config)
                .into_iter()
                .filter(|(name, _)| name == "wal_keep_size")
                .map(|(_, value)| value)
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(&config(None)), ["256MB"]);
        // A Pod of an older template: PostgreSQL's default.
        let older = Config {
            wal_keep_size: None,
            ..config(None)
        };
        assert!(kept(&older).is_empty());
    }

    #[test]
    fn fatal_lines_are_kept_without_their_prefix() {
        let line = "2026-12-06 07:40:01.123 UTC [31] FATAL:  recovery ended before configured recovery target was reached";
        assert_eq!(
            fatal(line).as_deref(),
            Some("FATAL:  recovery ended before configured recovery target was reached")
        );
        assert_eq!(
            fatal("2026-12-06 07:40:01 UTC [31] LOG:  redo starts at 0/2000028"),
            None
        );
    }

    #[test]
    fn a_recovering_server_keeps_the_prepared_timeline_and_lets_nobody_in() {
        let config = crate::config::tests::config();
        let settings = recovery_settings(&config);
        let get = |name: &str| {
            settings
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert!(get("recovery_target_timeline").is_empty());
        assert_eq!(get("hot_standby"), ["off"]);
        assert_eq!(get("wal_log_hints"), ["on"]);
    }

    #[test]
    fn lsns_compare_as_numbers() {
        assert_eq!(parse_lsn("0/3000148"), Some(0x3000148));
        assert!(parse_lsn("1/0").unwrap() > parse_lsn("0/FFFFFFFF").unwrap());
        assert_eq!(parse_lsn(""), None);
        assert_eq!(parse_lsn("nonsense"), None);
    }
}
