//! Running the plugin against the test cluster, and golden files with the volatile parts
//! masked (see tests/golden/README.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regex::Regex;

/// The plugin's result: exit code, stdout and stderr.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout of a run that must succeed.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "kubectl pg failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// The error line of a run that must fail: exactly one line on stderr, exit code 1.
    pub fn error(self) -> String {
        assert_eq!(
            self.code, 1,
            "kubectl pg did not fail:\n{}\n{}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line: {:?}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{:?}", self.stderr);
        self.stderr
    }
}

/// Runs `kubectl-pg` with `kubeconfig`, in `namespace`, with the cluster's kubectl on PATH
/// (psql execs through it).
pub fn plugin(kubeconfig: &Path, namespace: &str, args: &[&str]) -> Run {
    let cluster_kubectl = PathBuf::from(testenv_kubectl());
    let bin_dir = cluster_kubectl.parent().expect("kubectl's directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output: Output = Command::new(env!("CARGO_BIN_EXE_kubectl-pg"))
        .args(["--namespace", namespace])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .env_remove("NO_COLOR")
        .output()
        .expect("running kubectl-pg");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

static KUBECTL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Set once by the test from `Cluster::kubectl`.
pub fn set_kubectl(cluster: &testenv::Cluster) {
    let program = cluster
        .kubectl()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let _ = KUBECTL.set(program);
}

fn testenv_kubectl() -> String {
    KUBECTL.get().cloned().expect("support::set_kubectl first")
}

/// Warning Events that come and go with the timing of a Pod's start (a readiness probe that
/// runs before initdb finished, a Pod waiting for its volume): dropped before comparing.
const START_UP_NOISE: [&str; 2] = ["Unhealthy", "FailedScheduling"];

/// `text` with the parts that differ from run to run replaced by placeholders.
pub fn mask(text: &str, namespace: &str) -> String {
    let mut text = drop_noise(text);
    text = text.replace(namespace, "<ns>");
    let rules: &[(&str, &str)] = &[
        (r"[0-9a-f]{64}", "<sha256>"),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "<time>",
        ),
        (r"\d{8}T\d{6}Z", "<run>"),
        (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "<ip>"),
        (r"pgop-node-\d", "<node>"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<uid>",
        ),
        (r"run-now=\d+", "run-now=<request>"),
        (r#""request": "\d+""#, r#""request": "<request>""#),
        (r"\b\d+(\.\d)? (B|KiB|MiB|GiB)\b", "<size>"),
        (r"\b\d+ bytes\b", "<n> bytes"),
        (r#""sizeBytes": \d+"#, r#""sizeBytes": <n>"#),
        (r#""count": \d+"#, r#""count": <n>"#),
        (r"\bx\d+\b", "x<n>"),
        (r"\b(in )?\d+[smhd]\b", "<age>"),
        (r"restore-[a-z0-9]{5}\b", "restore-<suffix>"),
    ];
    for (pattern, replacement) in rules {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, *replacement)
            .into_owned();
    }
    realign(&text)
}

/// Drops the rows (text) and entries (JSON) of start-up noise Events.
fn drop_noise(text: &str) -> String {
    if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) {
        let strip = |view: &mut serde_json::Value| {
            if let Some(warnings) = view.get_mut("warnings").and_then(|w| w.as_array_mut()) {
                warnings.retain(|w| !START_UP_NOISE.contains(&w["reason"].as_str().unwrap_or("")));
                warnings.sort_by_key(|w| (w["object"].to_string(), w["reason"].to_string()));
            }
        };
        match &mut value {
            serde_json::Value::Array(views) => views.iter_mut().for_each(strip),
            view => strip(view),
        }
        return serde_json::to_string_pretty(&value).unwrap() + "\n";
    }
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "Recent warnings:" {
            out.push(line.to_string());
            let mut rows = Vec::new();
            while let Some(row) = lines.next_if(|l| !l.is_empty()) {
                rows.push(row.to_string());
            }
            let kept: Vec<String> = rows
                .into_iter()
                .filter(|r| {
                    !START_UP_NOISE
                        .iter()
                        .any(|n| r.contains(&format!("  {n}  ")))
                })
                .collect();
            if kept.len() <= 1 && kept.first().is_none_or(|h| h.contains("REASON")) {
                out.push("  (none)".into());
            } else {
                out.extend(kept);
            }
            continue;
        }
        out.push(line.to_string());
    }
    out.join("\n") + "\n"
}

/// Collapses runs of spaces that masking left uneven, so column widths do not matter.
fn realign(text: &str) -> String {
    let spaces = Regex::new(r"(\S)  +").unwrap();
    text.lines()
        .map(|l| spaces.replace_all(l, "$1  ").trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Compares `actual` (masked) with `tests/golden/<name>`; `UPDATE_GOLDEN=1` rewrites the file.
pub fn golden(name: &str, actual: &str, namespace: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let masked = mask(actual, namespace);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &masked).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        masked,
        expected,
        "{} differs (UPDATE_GOLDEN=1 rewrites it); unmasked output:\n{actual}",
        path.display()
    );
}

/// A kubeconfig acting as ServiceAccount `namespace/name`: the admin kubeconfig's cluster,
/// with the ServiceAccount's token as the only credential.
pub async fn service_account_kubeconfig(
    cluster: &testenv::Cluster,
    namespace: &str,
    name: &str,
    dir: &Path,
) -> PathBuf {
    let admin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(cluster.admin_kubeconfig()).unwrap())
            .unwrap();
    let token = cluster
        .service_account_token(namespace, name, 600)
        .await
        .unwrap();
    let mut server = admin["clusters"][0]["cluster"].clone();
    // A relative certificate path would be read relative to the new file.
    if let Some(ca) = server.get("certificate-authority").and_then(|c| c.as_str()) {
        let absolute = cluster.admin_kubeconfig().parent().unwrap().join(ca);
        server["certificate-authority"] = absolute.display().to_string().into();
    }
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": server}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": name, "namespace": namespace}}],
        "current-context": "c",
    });
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

#[test]
fn masking_hides_what_varies_and_keeps_what_does_not() {
    let text = "  NAME  PHASE  LAST RUN                      SIZE\n  nightly-ab12c  Completed  20260102T100000Z (5m ago)  2.0 KiB\n\
                at 2026-01-02T10:00:09Z from 10.244.1.7 on pgop-node-2 in ns-x1";
    assert_eq!(
        mask(text, "ns-x1"),
        "  NAME  PHASE  LAST RUN  SIZE\n  nightly-ab12c  Completed  <run> (<age> ago)  <size>\n\
         at <time> from <ip> on <node> in <ns>\n"
    );
}
