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

/// The API requests in the log of the controller-runtime operator (`bench/controller-runtime`),
/// by kind, named as kube names them where there is a match (`list`, `watch`, `get`,
/// `create`, `patch`, `patch_status`, ...; a PUT is `update`, `update_status`): client-go's
/// debugging round tripper logs one JSON line per request, message `Response`, with its
/// `verb` and `url`.
pub fn client_go_requests(log: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let events = log
        .lines()
        .filter(|line| line.contains("\"Response\""))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["msg"] == "Response");
    for event in events {
        let (Some(verb), Some(url)) = (event["verb"].as_str(), event["url"].as_str()) else {
            continue;
        };
        *counts.entry(request_kind(verb, url)).or_insert(0) += 1;
    }
    counts
}

/// The kind of an API request from its HTTP method and URL: a GET of a collection is a
/// `list`, or a `watch` with `watch=true`; of one object a `get`; of a subresource
/// `get_<subresource>`; of anything else (discovery: `/api`, `/apis/<group>/<version>`)
/// `get_discovery`. Other methods are `create`, `update`, `patch`, `delete` (or
/// `deletecollection` on a collection), with `_<subresource>` where there is one.
pub fn request_kind(verb: &str, url: &str) -> String {
    let path_and_query = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // `/api/v1/...` or `/apis/<group>/<version>/...`, then `namespaces/<ns>/` if namespaced.
    let rest = match segments.as_slice() {
        ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
        _ => &[][..],
    };
    let rest = match rest {
        ["namespaces", _, resource, more @ ..] => (Some(*resource), more),
        [resource, more @ ..] => (Some(*resource), more),
        [] => (None, &[][..]),
    };
    let (collection, subresource) = match rest {
        (None, _) => {
            return if verb == "GET" {
                "get_discovery".into()
            } else {
                verb.to_lowercase()
            };
        }
        (Some(_), []) => (true, None),
        (Some(_), [_name]) => (false, None),
        (Some(_), [_name, sub, ..]) => (false, Some(*sub)),
    };
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let kind = match verb {
        "GET" if watch => "watch",
        "GET" if collection => "list",
        "GET" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if collection => "deletecollection",
        "DELETE" => "delete",
        other => return other.to_lowercase(),
    };
    match subresource {
        Some(sub) => format!("{kind}_{sub}"),
        None => kind.to_string(),
    }
}

/// The version of `module` that a go.mod requires (`require module vX.Y.Z`, on its own or in
/// a `require (...)` block).
pub fn go_module_version<'a>(go_mod: &'a str, module: &str) -> Option<&'a str> {
    go_mod.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("require ").unwrap_or(line);
        let mut words = line.split_whitespace();
        (words.next() == Some(module))
            .then(|| words.next())
            .flatten()
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

    #[test]
    fn counts_client_go_requests_by_kind() {
        let line = |verb: &str, url: &str| {
            format!(
                r#"{{"level":"info","ts":"2026-12-05T21:05:36Z","msg":"Response","controller":"database","namespace":"ns","verb":"{verb}","url":"https://127.0.0.1:6443{url}","status":"200 OK","milliseconds":3}}"#
            )
        };
        let log = [
            line("GET", "/api"),
            line(
                "GET",
                "/apis/apps/v1/namespaces/ns/statefulsets?allowWatchBookmarks=true&watch=true",
            ),
            line("GET", "/api/v1/namespaces/ns/secrets?limit=500"),
            line("POST", "/api/v1/namespaces/ns/secrets"),
            line(
                "PUT",
                "/apis/database.example.com/v1/namespaces/ns/databases/db-0001/status",
            ),
            line(
                "PUT",
                "/apis/database.example.com/v1/namespaces/ns/databases/db-0002/status",
            ),
            r#"{"level":"info","msg":"Starting EventSource","verb":"GET","url":"/api"}"#.into(),
            "not json \"Response\"".into(),
        ]
        .join("\n");
        assert_eq!(
            client_go_requests(&log).into_iter().collect::<Vec<_>>(),
            [
                ("create".to_string(), 1),
                ("get_discovery".to_string(), 1),
                ("list".to_string(), 1),
                ("update_status".to_string(), 2),
                ("watch".to_string(), 1),
            ]
        );
    }

    #[test]
    fn request_kinds_from_method_and_url() {
        let base = "https://127.0.0.1:6443";
        let rows = [
            ("GET", "/apis/database.example.com/v1", "get_discovery"),
            ("GET", "/api/v1/namespaces", "list"),
            ("GET", "/api/v1/namespaces/ns", "get"),
            ("GET", "/api/v1/namespaces/ns/services/db-1", "get"),
            ("GET", "/api/v1/namespaces/ns/services?watch=1", "watch"),
            (
                "GET",
                "/apis/apps/v1/namespaces/ns/statefulsets/db-1/scale",
                "get_scale",
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/ns/statefulsets/db-1",
                "patch",
            ),
            (
                "PATCH",
                "/apis/database.example.com/v1/namespaces/ns/backups/b/status",
                "patch_status",
            ),
            (
                "PUT",
                "/api/v1/namespaces/ns/secrets/db-1-credentials",
                "update",
            ),
            ("DELETE", "/api/v1/namespaces/ns/pods/db-1-0", "delete"),
            ("DELETE", "/api/v1/namespaces/ns/pods", "deletecollection"),
            (
                "POST",
                "/api/v1/namespaces/ns/serviceaccounts/sa/token",
                "create_token",
            ),
        ];
        for (verb, path, kind) in rows {
            assert_eq!(
                request_kind(verb, &format!("{base}{path}")),
                kind,
                "{verb} {path}"
            );
        }
        assert!(is_read("get_discovery") && is_read("get_scale"));
        assert!(!is_read("update_status") && !is_read("deletecollection"));
    }

    #[test]
    fn reads_a_module_version_from_go_mod() {
        let go_mod = "module example/op\n\ngo 1.26.0\n\nrequire (\n\tgo.uber.org/zap v1.27.1\n\tsigs.k8s.io/controller-runtime v0.24.1\n)\n\nrequire k8s.io/api v0.36.3 // indirect\n";
        assert_eq!(
            go_module_version(go_mod, "sigs.k8s.io/controller-runtime"),
            Some("v0.24.1")
        );
        assert_eq!(go_module_version(go_mod, "k8s.io/api"), Some("v0.36.3"));
        assert_eq!(go_module_version(go_mod, "k8s.io"), None);
        assert_eq!(go_module_version(go_mod, "example/op"), None);
    }
}
