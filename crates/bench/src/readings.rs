//! Reading the measurements: the operators' Prometheus metrics, the API requests their kube
//! client logged, and memory and CPU time of processes from `/proc`.

use std::collections::BTreeMap;

/// The sum of every sample of the counter (or histogram `_count`) `name` in Prometheus text
/// format, over all label values. 0 when absent.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            // `name{labels} value` or `name value`, not `name_suffix ...`.
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.rsplit_once('}')?.1,
                None if rest.starts_with(' ') => rest,
                None => return None,
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// The API requests in an operator's JSON log, by kind (`list`, `watch`, `get`, `patch`,
/// `create`, ...), as kube's client logs each one at debug level (target
/// `kube_client::client::builder`, message `requesting`, the kind in the span's `otel.name`).
pub fn api_requests(log: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for kind in logged_requests(log) {
        *counts.entry(kind).or_insert(0) += 1;
    }
    counts
}

/// Each request's kind, as in [`api_requests`].
fn logged_requests(log: &str) -> impl Iterator<Item = String> + '_ {
    log.lines()
        .filter(|line| line.contains("\"requesting\""))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| {
            event["target"] == "kube_client::client::builder"
                && event["fields"]["message"] == "requesting"
        })
        .map(|event| {
            let kind = event["span"]["otel.name"].as_str().unwrap_or("other");
            kind.to_string()
        })
}

/// Requests that read: list, watch and get, including their metadata-only forms.
pub fn is_read(kind: &str) -> bool {
    ["list", "watch", "get"]
        .iter()
        .any(|verb| kind == *verb || kind.starts_with(&format!("{verb}_")))
}

/// A `kB` line of `/proc/<pid>/status` in bytes, e.g. `VmHWM` (peak resident set) or `VmRSS`.
pub fn proc_status_bytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(&format!("{key}:")))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time a process has used so far, user and system, in clock ticks: fields 14 and 15 of
/// `/proc/<pid>/stat`. The name in field 2 may hold spaces and parentheses, so the fields are
/// counted from its closing parenthesis, the last one on the line.
pub fn proc_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // After the name come field 3 (state) onwards: utime is the 12th of them, stime the 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The process id in a pid file of `hack/cluster-up.sh`: `<pid> <start time>`.
pub fn pid_file(text: &str) -> Option<u32> {
    text.split_whitespace().next()?.parse().ok()
}

/// Bytes as MiB with one decimal, for tables.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_metric_over_its_labels_only() {
        let text = "\
# HELP database_operator_reconciliations_total Reconciles of Databases, by result
# TYPE database_operator_reconciliations_total counter
database_operator_reconciliations_total{result=\"error\"} 2
database_operator_reconciliations_total{result=\"success\"} 1040
database_operator_reconciliations_total_other 7
backup_operator_reconcile_duration_seconds_count{controller=\"backup\"} 3
backup_operator_reconcile_duration_seconds_count{controller=\"restore\"} 4
plain 5
";
        assert_eq!(
            metric_sum(text, "database_operator_reconciliations_total"),
            1042.0
        );
        assert_eq!(
            metric_sum(text, "backup_operator_reconcile_duration_seconds_count"),
            7.0
        );
        assert_eq!(metric_sum(text, "plain"), 5.0);
        assert_eq!(metric_sum(text, "absent"), 0.0);
    }

    #[test]
    fn counts_logged_requests_by_kind() {
        let line = |message: &str, kind: &str| {
            format!(
                r#"{{"timestamp":"2026-11-25T23:44:22.117951Z","level":"DEBUG","fields":{{"message":"{message}"}},"target":"kube_client::client::builder","span":{{"http.method":"GET","otel.name":"{kind}","name":"HTTP"}}}}"#
            )
        };
        let log = [
            line("requesting", "list"),
            line("requesting", "watch"),
            line("stream closed", "watch"),
            line("requesting", "watch"),
            line("requesting", "patch_status"),
            r#"{"level":"INFO","fields":{"message":"requesting"},"target":"database_operator"}"#
                .to_string(),
            "not json \"requesting\"".to_string(),
        ]
        .join("\n");
        let counts = api_requests(&log);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [
                ("list".to_string(), 1),
                ("patch_status".to_string(), 1),
                ("watch".to_string(), 2)
            ]
        );
    }

    #[test]
    fn reads_are_lists_watches_and_gets() {
        for kind in ["list", "list_metadata", "watch", "watch_metadata", "get"] {
            assert!(is_read(kind), "{kind}");
        }
        for kind in ["patch", "patch_status", "create", "delete", "getaway"] {
            assert!(!is_read(kind), "{kind}");
        }
    }

    #[test]
    fn reads_memory_from_proc_status() {
        let status = "Name:\tdatabase-operator\nVmPeak:\t  123456 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(proc_status_bytes(status, "VmHWM"), Some(20 * 1024 * 1024));
        assert_eq!(proc_status_bytes(status, "VmRSS"), Some(10 * 1024 * 1024));
        assert_eq!(proc_status_bytes(status, "VmSwap"), None);
        assert_eq!(mib(20 * 1024 * 1024), "20.0 MiB");
    }

    #[test]
    fn reads_cpu_ticks_from_proc_stat() {
        // A name with a space and a parenthesis; utime 1500, stime 250.
        let stat = "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 91 0 0 0 1500 250 \
                    3 4 20 0 12 0 100 1000000 2000 18446744073709551615";
        assert_eq!(proc_stat_cpu_ticks(stat), Some(1750));
        assert_eq!(proc_stat_cpu_ticks("4242 (short) S 1 2"), None);
        assert_eq!(proc_stat_cpu_ticks("no name at all"), None);
    }

    #[test]
    fn reads_the_pid_from_a_pid_file() {
        assert_eq!(pid_file("31337 8812345\n"), Some(31337));
        assert_eq!(pid_file("31337"), Some(31337));
        assert_eq!(pid_file(""), None);
        assert_eq!(pid_file("gone"), None);
    }
}
