//! The throwaway PostgreSQL a drill restores into: `initdb` in a scratch directory, a server
//! listening only on a Unix socket there, stopped at the end. Nothing of it outlives the drill.

use crate::pg::PgConnection;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The superuser `initdb` creates; local connections are trusted, and only this Pod's user
/// can reach the socket directory.
const SUPERUSER: &str = "postgres";
const PORT: u16 = 5432;
/// How long the server may take to accept connections; crash recovery is not involved.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// The end of the server log kept in an error.
const LOG_TAIL: usize = 1500;

/// Where the server programs are and where the server may write.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Directory of initdb, postgres and pg_ctl; `PATH` is searched when unset.
    pub bin_dir: Option<PathBuf>,
    /// An empty directory the drill owns; the cluster, socket and download go there.
    pub work_dir: PathBuf,
    /// Run the server programs as this uid and gid. They refuse root, and tests often run as
    /// root; in a Pod the drill already runs as the image's postgres user.
    pub run_as: Option<(u32, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not prepare {path}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "could not start {program}; the drill needs the PostgreSQL server programs (initdb, postgres, pg_ctl) on PATH or in {}",
        backup_job::env::PG_BIN_DIR
    )]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("initdb failed ({status}): {output}")]
    Initdb { status: String, output: String },

    #[error("the throwaway server did not start: {log}")]
    Start { log: String },
}

/// A running throwaway server.
pub struct ThrowawayServer {
    settings: ServerSettings,
    postmaster: Child,
}

impl ThrowawayServer {
    pub async fn start(settings: &ServerSettings) -> Result<Self, ServerError> {
        for dir in [socket_dir(settings), settings.work_dir.join("download")] {
            prepare_dir(&dir, settings.run_as, 0o700)?;
        }
        let data = data_dir(settings);
        let output = server_command(settings, "initdb")
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", SUPERUSER, "--auth=trust"])
            .args([
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .await
            .map_err(|source| spawn_error(settings, "initdb", source))?;
        if !output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            return Err(ServerError::Initdb {
                status: output.status.to_string(),
                output: tail(text.trim()),
            });
        }
        let log =
            std::fs::File::create(log_file(settings)).map_err(|source| ServerError::Prepare {
                path: log_file(settings),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| ServerError::Prepare {
            path: log_file(settings),
            source,
        })?;
        let postmaster = server_command(settings, "postgres")
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                socket_dir(settings).display()
            ))
            .args(["-c", &format!("port={PORT}")])
            // Durability is pointless for data thrown away within the hour.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "synchronous_commit=off", "-c", "max_connections=10"])
            .args(["-c", "shared_buffers=64MB", "-c", "max_wal_size=1GB"])
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| spawn_error(settings, "postgres", source))?;
        let mut server = Self {
            settings: settings.clone(),
            postmaster,
        };
        server.wait_until_ready().await?;
        Ok(server)
    }

    /// How the client programs reach the server.
    pub fn connection(&self) -> PgConnection {
        PgConnection {
            host: Some(socket_dir(&self.settings).display().to_string()),
            port: Some(PORT),
            user: Some(SUPERUSER.into()),
            password: None,
            dbname: "postgres".into(),
        }
    }

    /// Where restores download the artifact: inside the work directory, which has the room.
    pub fn download_dir(&self) -> PathBuf {
        self.settings.work_dir.join("download")
    }

    /// `postmaster.pid` says `ready` on its eighth line once connections are accepted.
    async fn wait_until_ready(&mut self) -> Result<(), ServerError> {
        let pid_file = data_dir(&self.settings).join("postmaster.pid");
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let ready = std::fs::read_to_string(&pid_file)
                .is_ok_and(|text| text.lines().nth(7).map(str::trim) == Some("ready"));
            if ready {
                return Ok(());
            }
            let exited = self.postmaster.try_wait().ok().flatten();
            if exited.is_some() || tokio::time::Instant::now() > deadline {
                self.postmaster.kill().await.ok();
                return Err(ServerError::Start {
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        tail(
            std::fs::read_to_string(log_file(&self.settings))
                .unwrap_or_default()
                .trim(),
        )
    }

    /// Fast shutdown: sessions are cut, nothing is worth keeping. A server that does not stop
    /// is killed; the Pod goes away with its directory anyway.
    pub async fn stop(mut self) {
        let stopped = server_command(&self.settings, "pg_ctl")
            .arg("stop")
            .arg("--pgdata")
            .arg(data_dir(&self.settings))
            .args(["--mode=fast", "--wait", "--timeout=60", "--silent"])
            .status()
            .await;
        if !stopped.is_ok_and(|status| status.success()) {
            tracing::warn!("pg_ctl stop failed; killing the throwaway server");
            self.postmaster.kill().await.ok();
        }
        self.postmaster.wait().await.ok();
    }
}

fn data_dir(settings: &ServerSettings) -> PathBuf {
    settings.work_dir.join("pgdata")
}

fn socket_dir(settings: &ServerSettings) -> PathBuf {
    settings.work_dir.join("socket")
}

fn log_file(settings: &ServerSettings) -> PathBuf {
    settings.work_dir.join("server.log")
}

fn server_command(settings: &ServerSettings, program: &str) -> Command {
    let path = match &settings.bin_dir {
        Some(dir) => dir.join(program),
        None => PathBuf::from(program),
    };
    let mut command = Command::new(path);
    command.stdin(Stdio::null());
    // The storage credentials are no business of the server.
    command
        .env_remove(backup_job::env::AWS_ACCESS_KEY_ID)
        .env_remove(backup_job::env::AWS_SECRET_ACCESS_KEY);
    if let Some((uid, gid)) = settings.run_as {
        command.uid(uid).gid(gid);
    }
    command
}

fn spawn_error(settings: &ServerSettings, program: &str, source: std::io::Error) -> ServerError {
    let program = match &settings.bin_dir {
        Some(dir) => dir.join(program).display().to_string(),
        None => program.to_owned(),
    };
    ServerError::Spawn { program, source }
}

fn prepare_dir(dir: &Path, run_as: Option<(u32, u32)>, mode: u32) -> Result<(), ServerError> {
    use std::os::unix::fs::PermissionsExt as _;
    let error = |source| ServerError::Prepare {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(error)?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(error)?;
    }
    Ok(())
}

fn tail(text: &str) -> String {
    if text.len() <= LOG_TAIL {
        return text.to_owned();
    }
    let mut start = text.len() - LOG_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}
