//! The text screens of `status` (pure). Colour, when asked for, marks phases and readiness
//! only; everything says the same without it.

use chrono::{DateTime, Utc};
use std::fmt::Write as _;

use super::view::{BackupView, DatabaseView};

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Colour of a word such as a phase or `True`, by what it means.
fn tone(word: &str) -> Option<&'static str> {
    match word {
        "Ready" | "Completed" | "verified" | "primary" | "Running" | "true" => Some(GREEN),
        "Failed"
        | "failed"
        | "CrashLoopBackOff"
        | "ImagePullBackOff"
        | "ErrImagePull"
        | "InvalidImageName"
        | "CreateContainerConfigError" => Some(RED),
        "Pending" | "Provisioning" | "Configuring" | "Deploying" | "Verifying" | "InProgress"
        | "false" | "Unknown" => Some(YELLOW),
        _ => None,
    }
}

struct Painter {
    colour: bool,
}

impl Painter {
    fn paint(&self, padded: &str) -> String {
        match tone(padded.trim_end()).filter(|_| self.colour) {
            Some(code) => format!("{code}{padded}{RESET}"),
            None => padded.to_string(),
        }
    }

    fn bold(&self, text: &str) -> String {
        if self.colour {
            format!("{BOLD}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// Columns padded to their widest cell, two spaces apart, indented by two.
    fn table(&self, headers: &[&str], rows: &[Vec<String>]) -> String {
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: Vec<String>, paint: bool| {
            let last = cells.len() - 1;
            let text: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let padded = if i == last {
                        cell.clone()
                    } else {
                        format!("{cell:<width$}", width = widths[i])
                    };
                    if paint { self.paint(&padded) } else { padded }
                })
                .collect();
            format!("  {}\n", text.join("  ").trim_end())
        };
        let mut out = line(headers.iter().map(|h| h.to_string()).collect(), false);
        for row in rows {
            out += &line(row.clone(), true);
        }
        out
    }
}

/// Like kubectl's AGE column: the largest unit, `45s`, `12m`, `5h`, `3d`.
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - then).num_seconds();
    let (value, unit) = match seconds.abs() {
        s if s < 120 => (s, "s"),
        s if s < 7200 => (s / 60, "m"),
        s if s < 172_800 => (s / 3600, "h"),
        s => (s / 86_400, "d"),
    };
    if seconds < 0 {
        format!("in {value}{unit}")
    } else {
        format!("{value}{unit}")
    }
}

/// `2.0 KiB`, `512 B`.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

pub fn database(view: &DatabaseView, now: DateTime<Utc>, colour: bool) -> String {
    let p = Painter { colour };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} (namespace {})",
        p.bold("Database"),
        view.name,
        view.namespace
    );
    let field = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "  {label:<10} {value}");
    };
    field(&mut out, "Phase:", p.paint(&view.phase));
    field(
        &mut out,
        "Ready:",
        format!("{}/{} instances", view.ready_replicas, view.replicas),
    );
    field(&mut out, "Endpoint:", or_dash(view.endpoint.clone()));
    field(&mut out, "Secret:", or_dash(view.secret.clone()));
    field(&mut out, "Image:", view.image.clone());
    if let Some(backup) = &view.initialised_from {
        field(
            &mut out,
            "From:",
            format!("Backup {backup} (spec.backupRef)"),
        );
    }
    field(&mut out, "Age:", or_dash(view.created.map(|c| age(c, now))));
    if !view.reconciled {
        out += "  The database-operator has not reported on the current spec yet: is it running?\n";
    }

    out += &format!("\n{}\n", p.bold("Conditions:"));
    if view.conditions.is_empty() {
        out += "  (none)\n";
    } else {
        let rows: Vec<Vec<String>> = view
            .conditions
            .iter()
            .map(|c| {
                vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    age(c.last_transition_time, now),
                    c.message.clone(),
                ]
            })
            .collect();
        out += &p.table(&["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], &rows);
    }

    out += &format!("\n{}\n", p.bold("Instances:"));
    if view.instances.is_empty() {
        out += "  (none)\n";
    } else {
        let rows: Vec<Vec<String>> = view
            .instances
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    or_dash(i.role.clone()),
                    i.ready.to_string(),
                    i.state.clone(),
                    i.restarts.to_string(),
                    or_dash(i.lag_bytes.map(size)),
                    or_dash(i.node.clone()),
                ]
            })
            .collect();
        out += &p.table(
            &["NAME", "ROLE", "READY", "STATE", "RESTARTS", "LAG", "NODE"],
            &rows,
        );
    }

    out += &format!("\n{}\n", p.bold("Services:"));
    if view.services.is_empty() {
        out += "  (none)\n";
    } else {
        let rows: Vec<Vec<String>> = view
            .services
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.type_.clone(),
                    or_dash(s.cluster_ip.clone()),
                    s.ports.join(","),
                ]
            })
            .collect();
        out += &p.table(&["NAME", "TYPE", "CLUSTER-IP", "PORTS"], &rows);
    }

    out += &format!("\n{}\n", p.bold("Backups:"));
    if view.backups.is_empty() {
        out += "  (none reference this Database)\n";
    } else {
        let rows: Vec<Vec<String>> = view.backups.iter().map(|b| backup_row(b, now)).collect();
        out += &p.table(
            &[
                "NAME",
                "SCHEDULE",
                "PHASE",
                "LAST RUN",
                "NEXT RUN",
                "SIZE",
                "VERIFIED",
                "RECOVERABLE",
            ],
            &rows,
        );
        for b in &view.backups {
            if let Some(failure) = &b.failure {
                let _ = writeln!(out, "  {}: {failure}", b.name);
            }
        }
    }

    if !view.restores.is_empty() {
        out += &format!("\n{}\n", p.bold("Restores:"));
        let rows: Vec<Vec<String>> = view
            .restores
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.backup.clone(),
                    r.phase.clone(),
                    or_dash(r.run_id.clone()),
                    or_dash(r.completed.map(|c| age(c, now))),
                ]
            })
            .collect();
        out += &p.table(&["NAME", "BACKUP", "PHASE", "RUN", "FINISHED"], &rows);
    }

    out += &format!("\n{}\n", p.bold("Recent warnings:"));
    if view.warnings.is_empty() {
        out += "  (none)\n";
    } else {
        let rows: Vec<Vec<String>> = view
            .warnings
            .iter()
            .map(|w| {
                vec![
                    or_dash(w.time.map(|t| age(t, now))),
                    w.object.clone(),
                    w.reason.clone(),
                    format!("x{}", w.count),
                    w.message.clone(),
                ]
            })
            .collect();
        out += &p.table(&["AGE", "OBJECT", "REASON", "COUNT", "MESSAGE"], &rows);
    }
    out
}

fn backup_row(b: &BackupView, now: DateTime<Utc>) -> Vec<String> {
    let schedule = match (&b.schedule, b.suspended) {
        (Some(s), true) => format!("{s} (suspended)"),
        (Some(s), false) => s.clone(),
        (None, _) => "once".into(),
    };
    let last = b
        .last_run
        .as_ref()
        .map(|r| format!("{} ({} ago)", r.run_id, age(r.time, now)));
    let next = match (&b.active_job, b.next_run) {
        (Some(job), _) => Some(format!("running ({job})")),
        (None, Some(next)) => Some(age(next, now)),
        (None, None) => None,
    };
    let window = b.recoverable.as_ref().map(|w| {
        format!(
            "{} point{}, {} to {} ago",
            w.points,
            if w.points == 1 { "" } else { "s" },
            age(w.from, now),
            age(w.to, now)
        )
    });
    vec![
        b.name.clone(),
        schedule,
        b.phase.clone(),
        or_dash(last),
        or_dash(next),
        or_dash(b.last_run.as_ref().map(|r| size(r.size_bytes))),
        b.verification.clone(),
        or_dash(window),
    ]
}

/// One line per Database.
pub fn table(views: &[DatabaseView], now: DateTime<Utc>, colour: bool) -> String {
    let p = Painter { colour };
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            let newest = v
                .backups
                .iter()
                .filter_map(|b| b.last_run.as_ref())
                .map(|r| r.time)
                .max();
            vec![
                v.name.clone(),
                v.phase.clone(),
                format!("{}/{}", v.ready_replicas, v.replicas),
                or_dash(v.endpoint.clone()),
                v.backups.len().to_string(),
                or_dash(newest.map(|t| age(t, now))),
                v.warnings.len().to_string(),
                or_dash(v.created.map(|c| age(c, now))),
            ]
        })
        .collect();
    let table = p.table(
        &[
            "NAME",
            "PHASE",
            "READY",
            "ENDPOINT",
            "BACKUPS",
            "LAST BACKUP",
            "WARNINGS",
            "AGE",
        ],
        &rows,
    );
    // The table stands alone: no indent.
    table
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l).to_string() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_like_kubectl() {
        let now = Utc::now();
        let ago = |s: i64| age(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(600), "10m");
        assert_eq!(ago(3 * 3600), "3h");
        assert_eq!(ago(5 * 86_400), "5d");
        assert_eq!(ago(-90), "in 90s");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(size(3 * 1024 * 1024 + 1), "3.0 MiB");
    }

    #[test]
    fn colour_only_when_asked_and_alignment_survives_it() {
        let plain = Painter { colour: false };
        let rows = vec![vec!["a".to_string(), "Ready".to_string(), "x".to_string()]];
        let text = plain.table(&["NAME", "PHASE", "M"], &rows);
        assert!(!text.contains('\x1b'));
        assert_eq!(text, "  NAME  PHASE  M\n  a     Ready  x\n");
        let coloured = Painter { colour: true }.table(&["NAME", "PHASE", "M"], &rows);
        assert!(coloured.contains("\x1b[32mReady\x1b[0m"), "{coloured:?}");
        let stripped = coloured.replace("\x1b[32m", "").replace("\x1b[0m", "");
        assert_eq!(stripped, text);
    }
}
