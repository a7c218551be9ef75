//! A private PostgreSQL server per test: `initdb` in a temporary directory,
//! listening on 127.0.0.1 at a free port with password authentication,
//! stopped when dropped.

use backup_data::pg::{PgConnection, PgTools};
use secret::SecretString;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tempfile::TempDir;

pub const SUPERUSER: &str = "postgres";
pub const PASSWORD: &str = "test-password-7f3a";

pub struct PgServer {
    dir: TempDir,
    bin_dir: PathBuf,
    port: u16,
    /// initdb and postgres refuse to run as root; tests often do.
    run_as: Option<nix::unistd::User>,
}

impl PgServer {
    pub async fn start() -> Self {
        Self::start_in(server_bin_dir()).await
    }

    /// A server of a major version older than 16, whose pg_dump and pg_restore know neither
    /// lz4 nor zstd (Debian 12's PostgreSQL 15, which hack/deps/test.list installs).
    pub async fn start_older_than_16() -> Self {
        let old = installed()
            .into_iter()
            .filter(|(major, _)| *major < 16)
            .max()
            .map(|(_, bin)| bin)
            .expect(
                "no PostgreSQL server older than 16 under /usr/lib/postgresql: install Debian 12's \
                 postgresql (15) with `apt-get install postgresql`",
            );
        Self::start_in(old).await
    }

    /// A server with 1 MiB WAL segments: WAL archiving scenarios fill and switch many
    /// segments, and each costs 16 MiB of writing at the default size.
    pub async fn start_with_small_wal() -> Self {
        Self::start_in_with(server_bin_dir(), &["--wal-segsize=1"]).await
    }

    async fn start_in(bin_dir: PathBuf) -> Self {
        Self::start_in_with(bin_dir, &[]).await
    }

    async fn start_in_with(bin_dir: PathBuf, initdb_args: &[&str]) -> Self {
        let run_as = unprivileged_user();
        let dir = tempfile::Builder::new()
            .prefix("pg-fixture-")
            .tempdir()
            .unwrap();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, PASSWORD).unwrap();
        if let Some(user) = &run_as {
            for path in [dir.path(), &password_file] {
                chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
            }
        }
        let server = Self {
            dir,
            bin_dir,
            port: 0,
            run_as,
        };
        let data_dir = server.data_dir();
        let pwfile = format!("--pwfile={}", password_file.display());
        let mut args = vec![
            "--pgdata",
            &data_dir,
            "--username",
            SUPERUSER,
            "--auth=scram-sha-256",
            &pwfile,
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ];
        args.extend_from_slice(initdb_args);
        server.run("initdb", &args);
        server.launch()
    }

    /// Starts the server on a data directory made elsewhere: `dir/data`, e.g. a recovery
    /// prepared by the data path or a standby's clone. It gets a port of its own.
    pub fn start_on(dir: TempDir, bin_dir: PathBuf) -> Self {
        let run_as = unprivileged_user();
        let server = Self {
            dir,
            bin_dir,
            port: 0,
            run_as,
        };
        if let Some(user) = &server.run_as {
            let status = Command::new("chown")
                .args(["-R", &format!("{}:{}", user.uid, user.gid)])
                .arg(server.dir.path())
                .status()
                .unwrap();
            assert!(
                status.success(),
                "chown of {} failed",
                server.dir.path().display()
            );
        }
        server.launch()
    }

    /// A streaming standby of this server (`pg_basebackup -R`), started.
    pub fn start_standby(&self) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pg-standby-")
            .tempdir()
            .unwrap();
        let output = Command::new(self.bin_dir.join("pg_basebackup"))
            .arg("--pgdata")
            .arg(dir.path().join("data"))
            .args([
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
            ])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER)
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_basebackup for a standby failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The clone carries the primary's primary_conninfo without the password.
        std::fs::write(
            dir.path().join("data/postgresql.auto.conf"),
            format!(
                "primary_conninfo = 'host=127.0.0.1 port={} user={SUPERUSER} password={PASSWORD}'\n",
                self.port
            ),
        )
        .unwrap();
        Self::start_on(dir, self.bin_dir.clone())
    }

    /// `pg_ctl promote --wait`.
    pub fn promote(&self) {
        self.run(
            "pg_ctl",
            &["promote", "--pgdata", &self.data_dir(), "--wait"],
        );
    }

    /// Stops the server now, as a crash would.
    pub fn stop_immediately(&self) {
        self.run(
            "pg_ctl",
            &[
                "stop",
                "--pgdata",
                &self.data_dir(),
                "--mode=immediate",
                "--wait",
            ],
        );
    }

    /// The server's log, for assertion messages.
    pub fn server_log(&self) -> String {
        self.log()
    }

    fn launch(mut self) -> Self {
        // Another process can take the port between choosing and binding it;
        // a few attempts make that harmless.
        for attempt in 1..=5 {
            self.port = free_port();
            self.append_config(&format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = ''\n\
                 fsync = off\nshared_buffers = '16MB'\nmax_connections = 40\n",
                self.port
            ));
            let started = self.try_run(
                "pg_ctl",
                &[
                    "start",
                    "--pgdata",
                    &self.data_dir(),
                    "--log",
                    &self.log_file(),
                    // pg_ctl polls until the server accepts connections, up to this many seconds.
                    "--wait",
                    "--timeout=120",
                ],
            );
            match started {
                Ok(()) => return self,
                Err(message) if attempt < 5 => {
                    eprintln!("postgres did not start (attempt {attempt}): {message}")
                }
                Err(message) => panic!("postgres did not start: {message}\n{}", self.log()),
            }
        }
        unreachable!()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_path(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The uid and gid the server programs run as when the tests run as root.
    pub fn run_as(&self) -> Option<(u32, u32)> {
        self.run_as
            .as_ref()
            .map(|user| (user.uid.as_raw(), user.gid.as_raw()))
    }

    pub fn tools(&self) -> PgTools {
        PgTools::new(Some(self.bin_dir.clone()))
    }

    pub fn connection(&self, dbname: &str) -> PgConnection {
        PgConnection {
            host: Some("127.0.0.1".into()),
            port: Some(self.port),
            user: Some(SUPERUSER.into()),
            password: Some(SecretString::new(PASSWORD)),
            dbname: dbname.into(),
        }
    }

    /// Runs SQL as the superuser and returns the unaligned, tuples-only output.
    pub async fn psql(&self, dbname: &str, sql: &str) -> String {
        let output = tokio::process::Command::new(self.bin_dir.join("psql"))
            .args(["--no-psqlrc", "--tuples-only", "--no-align", "--quiet"])
            .args(["--set", "ON_ERROR_STOP=1", "--command", sql])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER)
            .env("PGPASSWORD", PASSWORD)
            .env("PGDATABASE", dbname)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "psql failed on {dbname}: {sql}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    pub async fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .await;
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log_file(&self) -> String {
        self.dir.path().join("server.log").display().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    fn append_config(&self, lines: &str) {
        use std::io::Write as _;
        let path = self.dir.path().join("data/postgresql.conf");
        let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(lines.as_bytes()).unwrap();
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command.args(args).stdin(Stdio::null());
        if let Some(user) = &self.run_as {
            use std::os::unix::process::CommandExt as _;
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        command
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let output = self
            .command(program, args)
            .output()
            .map_err(|error| error.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {args:?}: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        if let Err(message) = self.try_run(program, args) {
            panic!("{message}");
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate: the data is thrown away with the directory anyway.
        let stopped = self.try_run(
            "pg_ctl",
            &[
                "stop",
                "--pgdata",
                &self.data_dir(),
                "--mode=immediate",
                "--wait",
            ],
        );
        if let Err(message) = stopped {
            eprintln!("could not stop the test postgres: {message}");
        }
    }
}

/// `PG_BIN_DIR` when set, else the newest `/usr/lib/postgresql/<major>/bin`
/// that has the server programs (Debian's layout).
/// `PG_BIN_DIR`, else the newest PostgreSQL found: hack/postgres-tools.sh's (17, like the
/// backup image; Debian 12's 15 writes no lz4 or zstd) or Debian's.
fn server_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut candidates = installed();
    candidates.sort();
    match candidates.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server programs (initdb, pg_ctl, postgres) were not found under \
             /var/lib/pgop-postgresql/*/bin or /usr/lib/postgresql/*/bin. Run \
             hack/postgres-tools.sh (PostgreSQL 17, as in the backup image) or set PG_BIN_DIR."
        ),
    }
}

/// Every PostgreSQL server installed, with its major version: `17` under Debian's directory,
/// `17.11.0` under hack/postgres-tools.sh's.
fn installed() -> Vec<(u32, PathBuf)> {
    ["/var/lib/pgop-postgresql", "/usr/lib/postgresql"]
        .into_iter()
        .flat_map(|root| std::fs::read_dir(root).into_iter().flatten().flatten())
        .filter_map(|entry| {
            let name = entry.file_name();
            let major = name.to_str()?.split('.').next()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect()
}

/// The newest PostgreSQL installed, whose client programs the data path runs in the tests
/// (the backup image has PostgreSQL 17's).
pub fn newest_bin_dir() -> PathBuf {
    server_bin_dir()
}

fn unprivileged_user() -> Option<nix::unistd::User> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Some(user),
        _ => panic!(
            "tests run as root, and initdb refuses root, but there is no `postgres` user to run \
             it as; `apt-get install postgresql` creates one"
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
