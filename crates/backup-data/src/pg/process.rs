use super::args::{self, DumpOutput};
use super::stderr_tail::read_tail;
use super::{PgConnection, PgVersion};
use crate::compression::Compression;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// A version query that takes longer than this is a server in trouble.
const VERSION_QUERY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "could not start {program}; install the PostgreSQL client programs (Debian package postgresql-client) or set {}",
        backup_job::env::PG_BIN_DIR
    )]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{program} failed ({status}) for {target}: {stderr}")]
    Failed {
        program: &'static str,
        target: String,
        status: ExitStatus,
        stderr: String,
    },

    #[error("{program} did not answer within {} s for {target}", VERSION_QUERY_TIMEOUT.as_secs())]
    Timeout {
        program: &'static str,
        target: String,
    },

    #[error("{program} reported a version that cannot be read")]
    Version {
        program: &'static str,
        #[source]
        source: super::UnreadableVersion,
    },

    #[error("could not talk to {program}")]
    Io {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl PgError {
    /// True for failures that a moment's wait may cure: the server or the route to it is not
    /// there yet. A refused password or a missing database is not one of them.
    pub fn is_transient(&self) -> bool {
        const PASSING: [&str; 7] = [
            "connection refused",
            "could not translate host name",
            "no route to host",
            "the database system is starting up",
            "the database system is shutting down",
            "timeout expired",
            "server closed the connection unexpectedly",
        ];
        match self {
            PgError::Timeout { .. } => true,
            PgError::Failed { stderr, .. } => {
                let stderr = stderr.to_lowercase();
                PASSING.iter().any(|p| stderr.contains(p))
            }
            _ => false,
        }
    }
}

/// Where the client programs are. Their major version must be at least the
/// server's, which is why the directory can be chosen.
#[derive(Debug, Clone, Default)]
pub struct PgTools {
    bin_dir: Option<PathBuf>,
    /// How long [`PgTools::server_version`] keeps retrying a server it cannot reach yet.
    connect_patience: Duration,
}

/// `application_name` of the session whose snapshot a dump shares, as `pg_stat_activity`
/// shows it beside pg_dump's own.
pub const SNAPSHOT_SESSION_NAME: &str = "pg_dump snapshot";

impl PgTools {
    /// `None` searches `PATH`. Connections are tried once.
    pub fn new(bin_dir: Option<PathBuf>) -> Self {
        Self {
            bin_dir,
            connect_patience: Duration::ZERO,
        }
    }

    /// Keep retrying an unreachable server for this long before giving up. A Job starts
    /// moments after its Database turned Ready, while DNS, the Service's endpoints and
    /// kube-proxy may still be catching up; failing the run on that would be wrong.
    pub fn with_connect_patience(mut self, patience: Duration) -> Self {
        self.connect_patience = patience;
        self
    }

    /// How long connection failures that may pass are retried.
    pub fn connect_patience(&self) -> Duration {
        self.connect_patience
    }

    /// A command for one of the client programs with the connection in its environment.
    pub(crate) fn command(&self, program: &'static str, connection: &PgConnection) -> Command {
        let path = match &self.bin_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        let mut command = Command::new(path);
        connection.apply(&mut command);
        command
            // The storage credentials are of no use to PostgreSQL's tools.
            .env_remove(backup_job::env::AWS_ACCESS_KEY_ID)
            .env_remove(backup_job::env::AWS_SECRET_ACCESS_KEY)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            // If the caller gives up on a run, the tool must not outlive it.
            .kill_on_drop(true);
        command
    }

    fn spawn(
        &self,
        program: &'static str,
        mut command: Command,
        connection: &PgConnection,
    ) -> Result<RunningTool, PgError> {
        let mut child = command.spawn().map_err(|source| PgError::Spawn {
            program: self.display_path(program),
            source,
        })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        Ok(RunningTool {
            program,
            target: connection.describe(),
            child,
            stderr: tokio::spawn(read_tail(stderr)),
        })
    }

    /// Runs `command` (made by [`Self::command`]) to its end; a non-zero exit is an error
    /// carrying the end of its stderr.
    pub async fn run(
        &self,
        program: &'static str,
        command: Command,
        connection: &PgConnection,
    ) -> Result<(), PgError> {
        self.spawn(program, command, connection)?.wait().await
    }

    fn display_path(&self, program: &str) -> String {
        match &self.bin_dir {
            Some(dir) => dir.join(program).display().to_string(),
            None => program.to_owned(),
        }
    }

    /// `SHOW server_version`, e.g. `15.8 (Debian 15.8-0+deb12u1)`. Also the
    /// first check that the server is reachable with these credentials: errors that may
    /// pass by themselves (refused, unresolvable, starting up) are retried with backoff for
    /// the connect patience; others (a wrong password) fail at once.
    pub async fn server_version(&self, connection: &PgConnection) -> Result<String, PgError> {
        let deadline = tokio::time::Instant::now() + self.connect_patience;
        let mut delay = Duration::from_millis(250);
        loop {
            match self.query_server_version(connection).await {
                Err(error)
                    if error.is_transient() && tokio::time::Instant::now() + delay < deadline =>
                {
                    tracing::warn!(%error, retry_in = ?delay, "PostgreSQL not reachable yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                result => return result,
            }
        }
    }

    async fn query_server_version(&self, connection: &PgConnection) -> Result<String, PgError> {
        self.show(connection, "server_version").await
    }

    /// `SHOW <setting>` (a fixed name), given [`VERSION_QUERY_TIMEOUT`] to answer.
    async fn show(&self, connection: &PgConnection, setting: &str) -> Result<String, PgError> {
        let mut command = self.command("psql", connection);
        command
            .args(["--no-psqlrc", "--tuples-only", "--no-align", "--quiet"])
            .args(["--command", &format!("SHOW {setting}")])
            .stdout(Stdio::piped());
        let tool = self.spawn("psql", command, connection)?;
        let target = tool.target.clone();
        let output = tokio::time::timeout(VERSION_QUERY_TIMEOUT, tool.wait_with_stdout())
            .await
            .map_err(|_| PgError::Timeout {
                program: "psql",
                target,
            })??;
        Ok(String::from_utf8_lossy(&output).trim().to_owned())
    }

    /// `SHOW server_version_num`: what the server can do, as a number. Call it after
    /// [`PgTools::server_version`], which waits for the server; this one tries once.
    pub async fn server_version_num(
        &self,
        connection: &PgConnection,
    ) -> Result<PgVersion, PgError> {
        let output = self.show(connection, "server_version_num").await?;
        PgVersion::from_version_num(&output).map_err(|source| PgError::Version {
            program: "psql",
            source,
        })
    }

    /// `<program> --version`, e.g. `pg_dump (PostgreSQL) 17.2`: the version of the client
    /// program that will run, which decides what it can write or read.
    pub async fn tool_version(&self, program: &'static str) -> Result<PgVersion, PgError> {
        let path = match &self.bin_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        let output = Command::new(path)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| PgError::Spawn {
                program: self.display_path(program),
                source,
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        PgVersion::from_tool_output(&text).map_err(|source| PgError::Version { program, source })
    }

    /// `pg_dump` with `compression`, writing the custom format to its stdout or the
    /// directory format with several jobs into a directory. The custom format is
    /// compressed, keeps large objects, and lets `pg_restore` clean and reorder.
    /// With `snapshot` it dumps what that exported snapshot sees (see `crate::row_counts`).
    pub fn spawn_pg_dump(
        &self,
        connection: &PgConnection,
        compression: &Compression,
        client: &PgVersion,
        output: DumpOutput<'_>,
        snapshot: Option<&str>,
    ) -> Result<RunningTool, PgError> {
        let mut command = self.command("pg_dump", connection);
        command
            .args(args::pg_dump_args(compression, client.major, output))
            .args(snapshot.map(|id| format!("--snapshot={id}")));
        match output {
            DumpOutput::Stdout => command.stdout(Stdio::piped()),
            DumpOutput::Directory { .. } => command.stdout(Stdio::null()),
        };
        self.spawn("pg_dump", command, connection)
    }

    /// `pg_restore` of a custom-format file or a directory into the connection's database,
    /// replacing the objects the dump contains; in one transaction unless `jobs` > 1; with
    /// the dump's GRANTs and REVOKEs when `privileges`.
    pub fn spawn_pg_restore(
        &self,
        connection: &PgConnection,
        input: &Path,
        jobs: u32,
        privileges: bool,
    ) -> Result<RunningTool, PgError> {
        let mut command = self.command("pg_restore", connection);
        command
            .args(args::pg_restore_args(
                jobs,
                privileges,
                &connection.dbname_conninfo(),
                input,
            ))
            .stdout(Stdio::null());
        self.spawn("pg_restore", command, connection)
    }

    /// `psql` reading SQL from its stdin, for a session that must stay open between
    /// statements (a transaction whose snapshot pg_dump shares). Stops at the first error.
    pub fn spawn_psql_session(&self, connection: &PgConnection) -> Result<RunningTool, PgError> {
        let mut command = self.command("psql", connection);
        command
            .env("PGAPPNAME", SNAPSHOT_SESSION_NAME)
            .args(["--no-psqlrc", "--tuples-only", "--no-align", "--quiet"])
            .args(["--set", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        self.spawn("psql", command, connection)
    }

    /// Runs one SQL text and returns its unaligned, tuples-only output. For short outputs.
    pub async fn query(&self, connection: &PgConnection, sql: &str) -> Result<String, PgError> {
        let mut command = self.command("psql", connection);
        command
            .args(["--no-psqlrc", "--tuples-only", "--no-align", "--quiet"])
            .args(["--set", "ON_ERROR_STOP=1", "--command", sql])
            .stdout(Stdio::piped());
        let output = self
            .spawn("psql", command, connection)?
            .wait_with_stdout()
            .await?;
        Ok(String::from_utf8_lossy(&output).trim().to_owned())
    }

    /// `pg_restore --list` of an unpacked directory-format dump (it reads its `toc.dat`).
    pub async fn list_directory(
        &self,
        connection: &PgConnection,
        dir: &Path,
    ) -> Result<String, PgError> {
        let mut command = self.command("pg_restore", connection);
        command
            .args(["--list", "--format=directory"])
            .arg(dir)
            .stdout(Stdio::piped());
        let output = self
            .spawn("pg_restore", command, connection)?
            .wait_with_stdout()
            .await?;
        Ok(String::from_utf8_lossy(&output).into_owned())
    }

    /// `pg_basebackup` writing one tar stream of the data directory to its stdout, without
    /// WAL (the archiver ships it), `compress` being e.g. `client-lz4` or `none`. Its
    /// `backup_manifest` goes into the tar, and says where the backup sits in the WAL.
    pub fn spawn_pg_basebackup(
        &self,
        connection: &PgConnection,
        compress: &str,
        label: &str,
    ) -> Result<RunningTool, PgError> {
        let mut command = self.command("pg_basebackup", connection);
        command
            .args(["--pgdata=-", "--format=tar", "--wal-method=none"])
            .arg(format!("--compress={compress}"))
            .arg(format!("--label={label}"))
            .arg("--checkpoint=fast")
            .stdout(Stdio::piped());
        self.spawn("pg_basebackup", command, connection)
    }

    /// `pg_restore --list`: the table of contents of the archive it reads from stdin.
    pub fn spawn_pg_restore_list(&self, connection: &PgConnection) -> Result<RunningTool, PgError> {
        let mut command = self.command("pg_restore", connection);
        command
            .arg("--list")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        self.spawn("pg_restore", command, connection)
    }
}

/// A started client program whose stderr is being collected.
pub struct RunningTool {
    program: &'static str,
    target: String,
    child: Child,
    stderr: JoinHandle<String>,
}

impl RunningTool {
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Stops the program now; used when its output can no longer be stored.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the exit and turns a non-zero status into an error that
    /// carries the end of stderr. Borrows rather than consumes, so a caller
    /// racing it against cancellation can still kill the program.
    pub async fn wait(&mut self) -> Result<(), PgError> {
        let status = self.child.wait().await.map_err(|source| PgError::Io {
            program: self.program,
            source,
        })?;
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        if status.success() {
            if !stderr.is_empty() {
                tracing::info!(program = self.program, %stderr, "finished with messages");
            }
            Ok(())
        } else {
            Err(PgError::Failed {
                program: self.program,
                target: self.target.clone(),
                status,
                stderr,
            })
        }
    }

    /// For short outputs only: buffers all of stdout.
    pub async fn wait_with_stdout(mut self) -> Result<Vec<u8>, PgError> {
        use tokio::io::AsyncReadExt as _;
        let mut output = Vec::new();
        if let Some(mut stdout) = self.take_stdout() {
            stdout
                .read_to_end(&mut output)
                .await
                .map_err(|source| PgError::Io {
                    program: self.program,
                    source,
                })?;
        }
        self.wait().await?;
        Ok(output)
    }
}

#[cfg(test)]
mod transient_tests {
    use super::*;

    fn failed(stderr: &str) -> PgError {
        PgError::Failed {
            program: "psql",
            target: "db on host:5432".into(),
            status: std::process::ExitStatus::default(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn only_passing_failures_are_retried() {
        let cases = [
            (
                "connection to server at \"10.96.0.5\", port 5432 failed: Connection refused",
                true,
            ),
            (
                "could not translate host name \"db.ns.svc\" to address: Name or service not known",
                true,
            ),
            ("FATAL:  the database system is starting up", true),
            (
                "FATAL:  password authentication failed for user \"admin\"",
                false,
            ),
            ("FATAL:  database \"nope\" does not exist", false),
        ];
        for (stderr, transient) in cases {
            assert_eq!(failed(stderr).is_transient(), transient, "{stderr}");
        }
        let timeout = PgError::Timeout {
            program: "psql",
            target: String::new(),
        };
        assert!(timeout.is_transient());
    }
}
