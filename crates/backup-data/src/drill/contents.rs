//! What a drill compares: the tables the archive lists, the tables the restore created, and
//! the rows counted at dump time against the rows restored. The comparisons are pure; the
//! listing streams the artifact into `pg_restore --list`, which reads only its start.

use crate::pg::{PgConnection, PgError, PgTools};
use crate::row_counts::RowCounts;
use crate::storage::manifest::FORMAT_PG_DUMP_DIRECTORY_TAR;
use crate::storage::{RunRef, Storage, StorageError};
use futures::StreamExt as _;
use std::collections::BTreeSet;
use std::path::Path;
use tokio::io::AsyncWriteExt as _;

/// Mismatches named in an error; the rest are counted.
const NAMED: usize = 5;

/// Every table (partitioned or not) in the restored database, as `schema.table`.
pub const TABLES_SQL: &str = "SELECT coalesce(json_agg(format('%s.%s', ns.nspname, c.relname)), '[]') \
    FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'p') AND ns.nspname NOT IN ('pg_catalog', 'information_schema') \
      AND ns.nspname !~ '^pg_(toast|temp_)'";

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("could not read the artifact")]
    Read(#[source] StorageError),
    #[error("pg_restore --list failed")]
    PgRestore(#[source] PgError),
    #[error("could not unpack the artifact to list it")]
    Unpack(#[source] std::io::Error),
}

/// The tables of the archive's table of contents, as `schema.table`. A packed directory
/// (`format`) is unpacked under `scratch` first: pg_restore lists only a directory.
pub async fn archive_tables(
    storage: &Storage,
    run: &RunRef,
    format: &str,
    scratch: &Path,
    tools: &PgTools,
    connection: &PgConnection,
) -> Result<BTreeSet<String>, ListError> {
    if format == FORMAT_PG_DUMP_DIRECTORY_TAR {
        return directory_tables(storage, run, scratch, tools, connection).await;
    }
    let mut list = tools
        .spawn_pg_restore_list(connection)
        .map_err(ListError::PgRestore)?;
    let mut stdin = list.take_stdin().expect("pg_restore's stdin is piped");
    let mut stdout = list.take_stdout().expect("pg_restore's stdout is piped");
    let feed = async {
        let mut stream = storage.open_artifact(run).await.map_err(ListError::Read)?;
        while let Some(chunk) = stream.next().await {
            // pg_restore stops reading once it has the table of contents.
            if stdin
                .write_all(&chunk.map_err(ListError::Read)?)
                .await
                .is_err()
            {
                break;
            }
        }
        drop(stdin);
        Ok::<_, ListError>(())
    };
    let read = async {
        let mut text = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut text)
            .await
            .map(|_| text)
    };
    let (fed, text) = tokio::join!(feed, read);
    let waited = list.wait().await;
    fed?;
    waited.map_err(ListError::PgRestore)?;
    let text = text.map_err(|source| {
        ListError::PgRestore(PgError::Io {
            program: "pg_restore",
            source,
        })
    })?;
    Ok(tables_in_listing(&String::from_utf8_lossy(&text)))
}

async fn directory_tables(
    storage: &Storage,
    run: &RunRef,
    scratch: &Path,
    tools: &PgTools,
    connection: &PgConnection,
) -> Result<BTreeSet<String>, ListError> {
    let dir = tempfile::Builder::new()
        .prefix("list-")
        .tempdir_in(scratch)
        .map_err(ListError::Unpack)?;
    let stream = storage.open_artifact(run).await.map_err(ListError::Read)?;
    let unpacked = crate::tar_stream::unpack_stream(stream, dir.path())
        .await
        .map_err(ListError::Read)?;
    unpacked.unpacked.map_err(ListError::Unpack)?;
    let listing = tools
        .list_directory(connection, dir.path())
        .await
        .map_err(ListError::PgRestore)?;
    Ok(tables_in_listing(&listing))
}

/// The `TABLE` entries of a `pg_restore --list` output. An entry reads
/// `<id>; <catalog oid> <oid> TABLE <schema> <name> <owner>`; the name is what lies between
/// the schema and the owner, so a name with spaces is kept whole (a schema with spaces is not).
pub fn tables_in_listing(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .filter(|line| !line.trim_start().starts_with(';'))
        .filter_map(|line| {
            let (_, entry) = line.split_once("; ")?;
            let words: Vec<&str> = entry.split(' ').collect();
            if words.get(2) != Some(&"TABLE") || words.len() < 5 {
                return None;
            }
            let rest = &words[3..];
            // `TABLE DATA` and `TABLE ATTACH` entries are not tables.
            if matches!(rest[0], "DATA" | "ATTACH") {
                return None;
            }
            let name = if rest.len() > 2 {
                rest[1..rest.len() - 1].join(" ")
            } else {
                rest[1].to_owned()
            };
            Some(format!("{}.{name}", rest[0]))
        })
        .collect()
}

/// Tables the archive lists that the restored database lacks.
pub fn missing_tables(archive: &BTreeSet<String>, restored: &BTreeSet<String>) -> Vec<String> {
    archive.difference(restored).cloned().collect()
}

/// Differences between the rows counted at dump time and those restored, one text per table,
/// or `Ok` with the rows compared.
pub fn compare_rows(recorded: &RowCounts, restored: &RowCounts) -> Result<u64, String> {
    let mut differences = Vec::new();
    for (table, want) in recorded {
        match restored.get(table) {
            Some(got) if got == want => {}
            Some(got) => differences.push(format!("{table}: {want} rows dumped, {got} restored")),
            None => differences.push(format!("{table}: {want} rows dumped, table not restored")),
        }
    }
    for (table, got) in restored {
        if !recorded.contains_key(table) {
            differences.push(format!(
                "{table}: not in the dump's row counts, {got} restored"
            ));
        }
    }
    if differences.is_empty() {
        return Ok(restored.values().sum());
    }
    let total = differences.len();
    let mut text = differences
        .into_iter()
        .take(NAMED)
        .collect::<Vec<_>>()
        .join("; ");
    if total > NAMED {
        text.push_str(&format!("; and {} more", total - NAMED));
    }
    Err(text)
}

/// The restored database's tables, from [`TABLES_SQL`]'s output.
pub fn parse_tables(output: &str) -> Result<BTreeSet<String>, String> {
    serde_json::from_str(output.trim())
        .map_err(|error| format!("unexpected table list {output:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
;
; Archive created at 2026-01-02 02:00:00 UTC
;     dbname: shop
;
; Selected TOC Entries:
;
5; 2615 2200 SCHEMA - public pg_database_owner
216; 1259 16385 TABLE public samples postgres
217; 1259 16390 TABLE shop line items alice
218; 1259 16395 TABLE public measurements alice
219; 1259 16396 TABLE public measurements_2026 alice
3350; 0 16385 TABLE DATA public samples postgres
3351; 0 0 TABLE ATTACH public measurements_2026 alice
3352; 2606 16400 CONSTRAINT public samples samples_pkey postgres
";

    #[test]
    fn tables_are_read_from_the_listing() {
        let tables: Vec<_> = tables_in_listing(LISTING).into_iter().collect();
        assert_eq!(
            tables,
            [
                "public.measurements",
                "public.measurements_2026",
                "public.samples",
                "shop.line items"
            ]
        );
    }

    #[test]
    fn missing_tables_are_named() {
        let archive = tables_in_listing(LISTING);
        let restored: BTreeSet<String> = ["public.samples".into(), "shop.line items".into()].into();
        assert_eq!(
            missing_tables(&archive, &restored),
            ["public.measurements", "public.measurements_2026"]
        );
    }

    #[test]
    fn row_counts_must_match_exactly() {
        let recorded: RowCounts = [("public.a".into(), 3), ("public.b".into(), 0)].into();
        assert_eq!(compare_rows(&recorded, &recorded), Ok(3));
        let fewer: RowCounts = [("public.a".into(), 2), ("public.b".into(), 0)].into();
        assert_eq!(
            compare_rows(&recorded, &fewer),
            Err("public.a: 3 rows dumped, 2 restored".into())
        );
        let other: RowCounts = [("public.a".into(), 3), ("public.c".into(), 1)].into();
        assert_eq!(
            compare_rows(&recorded, &other),
            Err("public.b: 0 rows dumped, table not restored; public.c: not in the dump's row counts, 1 restored".into())
        );
    }

    #[test]
    fn many_differences_are_counted_not_listed() {
        let recorded: RowCounts = (0..8).map(|i| (format!("public.t{i}"), 1)).collect();
        let restored: RowCounts = (0..8).map(|i| (format!("public.t{i}"), 0)).collect();
        let text = compare_rows(&recorded, &restored).unwrap_err();
        assert!(text.ends_with("; and 3 more"), "{text}");
    }
}
