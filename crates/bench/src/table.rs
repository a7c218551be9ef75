//! The Markdown tables the benchmark prints: one column per run, so that the same figure for
//! this tree and for the baseline, at each size, sit side by side.

use std::time::Duration;

/// A table with a label column and one column per run.
pub struct Table {
    columns: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
}

impl Table {
    pub fn new(columns: Vec<String>) -> Table {
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row; a run without a cell shows `-`, so a short row cannot shift the columns.
    pub fn row(&mut self, label: impl Into<String>, cells: Vec<String>) {
        self.rows.push((label.into(), cells));
    }

    pub fn render(&self) -> String {
        let header = std::iter::once("").chain(self.columns.iter().map(String::as_str));
        let mut out = vec![
            line(header),
            format!("|---|{}", "---|".repeat(self.columns.len())),
        ];
        for (label, cells) in &self.rows {
            let cells = (0..self.columns.len()).map(|i| cells.get(i).map_or("-", String::as_str));
            out.push(line(std::iter::once(label.as_str()).chain(cells)));
        }
        out.join("\n")
    }
}

/// One Markdown table line; an empty cell is written `| |`, as in the tables before.
fn line<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    cells.fold("|".to_string(), |line, cell| match cell {
        "" => line + " |",
        cell => format!("{line} {cell} |"),
    })
}

/// The heading of a run's column: its size and which binaries ran (`this` or a short hash).
pub fn column(size: usize, build: &str) -> String {
    format!("N={size} {build}")
}

/// `count / of` with two decimals, `-` when there is nothing to divide by: requests per
/// Database, per reconcile.
pub fn per(count: u64, of: u64) -> String {
    if of == 0 {
        return "-".into();
    }
    format!("{:.2}", count as f64 / of as f64)
}

/// `count` events in `window` as a rate per minute, one decimal; `-` for an empty window.
pub fn per_minute(count: u64, window: Duration) -> String {
    if window.is_zero() {
        return "-".into();
    }
    format!("{:.1}", count as f64 * 60.0 / window.as_secs_f64())
}

/// Seconds with one decimal, for tables.
pub fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_column_per_run_and_short_rows_padded() {
        let mut table = Table::new(vec![
            column(100, "this"),
            column(100, "f53b16a"),
            column(1000, "this"),
        ]);
        table.row(
            "converged",
            vec!["1.0 s".into(), "2.0 s".into(), "9.5 s".into()],
        );
        table.row("kube-apiserver CPU", vec!["3.1 s".into()]);
        assert_eq!(
            table.render(),
            "\
| | N=100 this | N=100 f53b16a | N=1000 this |
|---|---|---|---|
| converged | 1.0 s | 2.0 s | 9.5 s |
| kube-apiserver CPU | 3.1 s | - | - |"
        );
    }

    #[test]
    fn divides_by_the_number_of_databases_or_reconciles() {
        assert_eq!(per(60_819, 1000), "60.82");
        assert_eq!(per(5, 3), "1.67");
        assert_eq!(per(5, 0), "-");
    }

    #[test]
    fn rates_per_minute_over_the_idle_window() {
        assert_eq!(per_minute(3, Duration::from_secs(60)), "3.0");
        assert_eq!(per_minute(3, Duration::from_secs(30)), "6.0");
        assert_eq!(per_minute(0, Duration::from_secs(60)), "0.0");
        assert_eq!(per_minute(1, Duration::ZERO), "-");
        assert_eq!(seconds(Duration::from_millis(46_040)), "46.0 s");
    }
}
