//! The operators as separate OS processes, as they run in a cluster: their own identity,
//! their own crashes, and restarts that lose all in-memory state.

use std::{
    ffi::OsString,
    fs::OpenOptions,
    io::Write,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::cluster::tail;

/// One of the two operators of this repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    Database,
    Backup,
}

impl Operator {
    pub const ALL: [Operator; 2] = [Operator::Database, Operator::Backup];

    /// The binary's, ServiceAccount's and `deploy/` directory's name.
    pub fn name(self) -> &'static str {
        match self {
            Operator::Database => "database-operator",
            Operator::Backup => "backup-operator",
        }
    }

    /// The namespace its ServiceAccount lives in.
    pub fn namespace(self) -> String {
        format!("{}-system", self.name())
    }

    /// The username the API server sees, as in audit events and RBAC subjects.
    pub fn username(self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace(), self.name())
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Operator::Database => 0,
            Operator::Backup => 1,
        }
    }
}

/// A running operator binary, killed when dropped.
///
/// Output (stdout and stderr, across restarts) goes to a log file in a temporary directory.
/// When dropped while the test panics, the end of the log is printed to the test's output and
/// the file is kept.
pub struct OperatorProcess {
    label: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    log_dir: Option<TempDir>,
    log_path: PathBuf,
    child: Option<Child>,
}

impl OperatorProcess {
    /// Starts `operator`'s binary with `KUBECONFIG=kubeconfig` (normally
    /// [`crate::Cluster::operator_kubeconfig`]), extra arguments and extra environment.
    ///
    /// The binary is the one cargo built for this profile (`<target>/debug/<operator>`); it is
    /// not built here, since cargo holds the build lock while tests run.
    pub fn spawn(
        operator: Operator,
        kubeconfig: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<OperatorProcess> {
        let program = binary_path(operator.name());
        if !program.is_file() {
            bail!(
                "{} not found at {}; run `cargo build --workspace --bins` first",
                operator.name(),
                program.display()
            );
        }
        OperatorProcess::spawn_binary(operator, &program, kubeconfig, args, env)
    }

    /// Starts `program` as `operator`, as [`Self::spawn`] does, for a binary built elsewhere:
    /// the benchmark runs a build of another commit beside this one.
    pub fn spawn_binary(
        operator: Operator,
        program: &Path,
        kubeconfig: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<OperatorProcess> {
        let mut all_env = vec![(
            OsString::from("KUBECONFIG"),
            kubeconfig.as_os_str().to_owned(),
        )];
        all_env.extend(
            env.iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        OperatorProcess::start(
            operator.name(),
            program.to_path_buf(),
            args.iter().map(OsString::from).collect(),
            all_env,
        )
    }

    /// Starts another program the tests run beside the operators (a Prometheus server, say)
    /// the same way: killed when dropped or when the test process dies, output in a log file
    /// that a panicking test prints.
    pub fn spawn_program(label: &str, program: &Path, args: &[&str]) -> Result<OperatorProcess> {
        OperatorProcess::start(
            label,
            program.to_path_buf(),
            args.iter().map(OsString::from).collect(),
            Vec::new(),
        )
    }

    pub(crate) fn start(
        label: &str,
        program: PathBuf,
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
    ) -> Result<OperatorProcess> {
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("testenv-{label}-"))
            .tempdir()
            .context("creating a log directory")?;
        let log_path = log_dir.path().join(format!("{label}.log"));
        let mut process = OperatorProcess {
            label: label.to_string(),
            program,
            args,
            env,
            log_dir: Some(log_dir),
            log_path,
            child: None,
        };
        process.launch()?;
        Ok(process)
    }

    fn launch(&mut self) -> Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        writeln!(
            log,
            "===== testenv: starting {} {:?} =====",
            self.program.display(),
            self.args
        )?;
        let stderr = log.try_clone()?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        // PR_SET_PDEATHSIG kills the operator if the test process dies without running Drop
        // (a SIGKILLed or aborted test); an orphaned operator would go on writing to the shared
        // cluster under the same identity and spoil later tests' counts.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the process with SIGKILL (no graceful shutdown, as a crash or an OOM kill) and
    /// reaps it. Does nothing when it is not running.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if child.try_wait()?.is_none() {
                child
                    .kill()
                    .with_context(|| format!("killing {}", self.label))?;
            }
            child
                .wait()
                .with_context(|| format!("reaping {}", self.label))?;
        }
        Ok(())
    }

    /// Kills the process (if running) and starts it again with the same arguments.
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.launch()
    }

    /// Whether the process is still running (false once it exited or was killed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log file with the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        match std::fs::read(&self.log_path) {
            Ok(bytes) => tail(&String::from_utf8_lossy(&bytes), lines),
            Err(e) => format!("(cannot read {}: {e})", self.log_path.display()),
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.kill();
        if std::thread::panicking() {
            eprintln!(
                "===== {} log (last 100 lines; whole log kept at {}) =====\n{}",
                self.label,
                self.log_path.display(),
                self.log_tail(100)
            );
            if let Some(dir) = self.log_dir.take() {
                let _ = dir.keep();
            }
        }
    }
}

/// `<target dir>/<profile>/<name>`: cargo puts test binaries in `<target>/<profile>/deps`, so
/// the running test's own path gives the directory, whatever CARGO_TARGET_DIR or profile.
fn binary_path(name: &str) -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        (deps.file_name()? == "deps").then(|| deps.parent().map(Path::to_path_buf))?
    });
    let profile_dir = from_exe.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
        target.join("debug")
    });
    profile_dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> OperatorProcess {
        OperatorProcess::start(
            "shell",
            PathBuf::from("/bin/sh"),
            vec!["-c".into(), script.into()],
            vec![("TESTENV_GREETING".into(), "hello".into())],
        )
        .expect("sh starts")
    }

    /// Polls the log until `text` appears `times` times (the shell writes asynchronously).
    /// `text` must not occur in the script itself, which the start marker line quotes.
    fn await_log(p: &OperatorProcess, text: &str, times: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(p.log_path())
            .unwrap_or_default()
            .matches(text)
            .count()
            < times
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no {text:?} in the log"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn output_goes_to_the_log_across_restarts() {
        let mut p = shell("echo \"$TESTENV_GREETING\"; echo \"err$((1 + 1))\" >&2; exec sleep 60");
        assert!(p.is_running());
        await_log(&p, "err2", 1);
        let first = p.pid();
        p.restart().expect("restarts");
        assert_ne!(p.pid(), first);
        await_log(&p, "err2", 2);
        p.kill().expect("kills");
        assert!(!p.is_running());
        let log = std::fs::read_to_string(p.log_path()).expect("log exists");
        assert_eq!(log.matches("===== testenv: starting").count(), 2, "{log}");
        assert_eq!(log.matches("hello").count(), 2, "{log}");
        assert!(p.log_tail(1).contains("err2"), "{log}");
    }

    #[test]
    fn an_exited_process_is_not_running() {
        let mut p = shell("exit 3");
        let mut child = p.child.take().expect("started");
        child.wait().expect("exits");
        assert!(!p.is_running());
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let err =
            match OperatorProcess::spawn(Operator::Backup, Path::new("/nonexistent"), &[], &[]) {
                Ok(_) if binary_path("backup-operator").is_file() => return,
                Ok(_) => panic!("spawned a missing binary"),
                Err(e) => e.to_string(),
            };
        assert!(err.contains("cargo build --workspace --bins"), "{err}");
    }
}
