//! Rows of every user table, counted in the very snapshot `pg_dump` dumps, so a restore drill
//! can tell a restore that lost rows from a database that changed after the dump.
//!
//! A `psql` session opens a `REPEATABLE READ` transaction, exports its snapshot, counts, and
//! stays open while `pg_dump --snapshot=<id>` runs: an exported snapshot can only be imported
//! while the transaction that exported it is open. Counting reads every table once more,
//! which is the price of a drill that can compare rows.

use crate::pg::{PgConnection, PgError, PgTools, RunningTool};
use std::collections::BTreeMap;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout};

/// `schema.table` → rows, names unquoted: the map is for people to read and for a drill to
/// compare with the same query's output on the restored database.
pub type RowCounts = BTreeMap<String, u64>;

/// One JSON object of the row counts of the tables whose data `pg_dump` dumps: ordinary
/// tables and partitions (partitioned parents hold no rows of their own), outside the system
/// schemas, not members of an extension. `query_to_xml` runs each `count(*)` inside this
/// statement, hence inside the caller's transaction and snapshot.
pub const COUNT_ROWS_SQL: &str = "SELECT coalesce(json_object_agg(t.name, t.n ORDER BY t.name), '{}') FROM ( \
    SELECT format('%s.%s', ns.nspname, c.relname) AS name, \
           (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', ns.nspname, c.relname), false, true, '')))[1]::text::bigint AS n \
    FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace \
    WHERE c.relkind = 'r' AND ns.nspname NOT IN ('pg_catalog', 'information_schema') \
      AND ns.nspname !~ '^pg_(toast|temp_)' \
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') \
    ) t";

/// Parses the output of [`COUNT_ROWS_SQL`].
pub fn parse_counts(output: &str) -> Result<RowCounts, String> {
    serde_json::from_str(output.trim())
        .map_err(|error| format!("unexpected row count output {output:?}: {error}"))
}

/// The open transaction whose snapshot the dump uses.
pub struct SnapshotSession {
    psql: RunningTool,
    stdin: ChildStdin,
    snapshot: String,
    counts: RowCounts,
}

impl SnapshotSession {
    /// Starts the transaction, exports its snapshot and counts the rows in it.
    pub async fn open(tools: &PgTools, connection: &PgConnection) -> Result<Self, PgError> {
        let mut psql = tools.spawn_psql_session(connection)?;
        let mut stdin = psql.take_stdin().expect("psql's stdin is piped");
        let stdout = psql.take_stdout().expect("psql's stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let script = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSELECT pg_export_snapshot();\n{COUNT_ROWS_SQL};\n"
        );
        let io = |source| PgError::Io {
            program: "psql",
            source,
        };
        // A write error means psql already exited; its exit status below says why.
        let written = stdin.write_all(script.as_bytes()).await;
        let read = match written {
            Ok(()) => read_two_lines(&mut lines).await.map_err(io)?,
            Err(_) => None,
        };
        let Some((snapshot, counts)) = read else {
            drop(stdin);
            psql.wait().await?;
            return Err(io(std::io::Error::other(
                "psql ended before it reported the snapshot and the row counts",
            )));
        };
        let counts = parse_counts(&counts).map_err(|reason| io(std::io::Error::other(reason)))?;
        tracing::debug!(%snapshot, tables = counts.len(), "rows counted in the dump's snapshot");
        Ok(Self {
            psql,
            stdin,
            snapshot,
            counts,
        })
    }

    /// The snapshot id for `pg_dump --snapshot`.
    pub fn id(&self) -> &str {
        &self.snapshot
    }

    /// Ends the transaction (it only read) and returns the counts. A session that cannot be
    /// ended cleanly is killed: the dump no longer needs it either way.
    pub async fn close(mut self) -> RowCounts {
        let ended = self.stdin.write_all(b"ROLLBACK;\n").await;
        drop(self.stdin);
        if ended.is_err() || self.psql.wait().await.is_err() {
            tracing::warn!("the snapshot session did not end cleanly");
            self.psql.kill().await;
        }
        self.counts
    }
}

async fn read_two_lines(
    lines: &mut Lines<BufReader<ChildStdout>>,
) -> std::io::Result<Option<(String, String)>> {
    let Some(snapshot) = lines.next_line().await? else {
        return Ok(None);
    };
    let Some(counts) = lines.next_line().await? else {
        return Ok(None);
    };
    Ok(Some((snapshot.trim().to_owned(), counts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_from_the_json_psql_prints() {
        let counts = parse_counts(r#"{ "public.a" : 3, "shop.line items" : 0 }"#).unwrap();
        assert_eq!(counts["public.a"], 3);
        assert_eq!(counts["shop.line items"], 0);
        assert!(parse_counts("{}").unwrap().is_empty());
        assert!(parse_counts("ERROR").is_err());
    }
}
