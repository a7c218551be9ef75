//! The `backup-operator` binary run as a Job runs it: settings from the
//! environment, a termination log, one JSON line on stdout.

use backup_job::report::{Outcome, TERMINATION_MESSAGE_LIMIT};
use backup_test_support::{self as support, postgres, postgres::PgServer};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tempfile::TempDir;

/// A run in progress.
pub struct Running {
    child: tokio::process::Child,
    termination_log: PathBuf,
    /// Holds the termination log and `BACKUP_TEMP_DIR`.
    _dir: TempDir,
}

pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub termination_message: String,
}

impl Running {
    pub fn start(args: &[&str], env: Vec<(&'static str, String)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Kubernetes creates this file; the binary only writes to an existing one.
        let termination_log = dir.path().join("termination-log");
        std::fs::write(&termination_log, "").unwrap();
        let mut env = env;
        env.push((
            "TERMINATION_LOG_PATH",
            termination_log.display().to_string(),
        ));
        env.push(("BACKUP_TEMP_DIR", dir.path().display().to_string()));
        let child = operator(args, &env).spawn().unwrap();
        Self {
            child,
            termination_log,
            _dir: dir,
        }
    }

    /// Asks the process to stop, as Kubernetes does when it deletes the Pod.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("still running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }

    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    pub async fn finish(self) -> Finished {
        let output = self.child.wait_with_output().await.unwrap();
        Finished {
            success: output.status.success(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
            termination_message: std::fs::read_to_string(&self.termination_log).unwrap(),
        }
    }
}

pub async fn run(args: &[&str], env: Vec<(&'static str, String)>) -> Finished {
    Running::start(args, env).finish().await
}

impl Finished {
    /// The result, checked to be the same one line on stdout and in the termination log.
    pub fn outcome(&self) -> Outcome {
        let lines: Vec<_> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "stdout must be one JSON line: {:?}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert_eq!(lines[0], self.termination_message);
        assert!(self.termination_message.len() <= TERMINATION_MESSAGE_LIMIT);
        Outcome::parse(lines[0]).unwrap()
    }

    /// The error of a failed run; panics on success.
    pub fn error(&self) -> String {
        assert!(
            !self.success,
            "the run succeeded: {}\n{}",
            self.stdout, self.stderr
        );
        match self.outcome() {
            Outcome::Failed { error } => error,
            other => panic!("a failed run reported {other:?}"),
        }
    }
}

/// The `backup-operator` binary with a clean environment plus `env`.
pub fn operator(args: &[&str], env: &[(&str, String)]) -> tokio::process::Command {
    operator_at(Path::new(env!("CARGO_BIN_EXE_backup-operator")), args, env)
}

/// [`operator`] from a copy of the binary at `binary`.
pub fn operator_at(
    binary: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Environment for the binary to reach `dbname` on `server`.
pub fn pg_env(server: &PgServer, dbname: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PGHOST", "127.0.0.1".into()),
        ("PGPORT", server.port().to_string()),
        ("PGUSER", postgres::SUPERUSER.into()),
        ("PGPASSWORD", postgres::PASSWORD.into()),
        ("PGDATABASE", dbname.into()),
        ("PG_BIN_DIR", server.bin_dir().display().to_string()),
        ("BACKUP_NAME", support::BACKUP_NAME.into()),
    ]
}
