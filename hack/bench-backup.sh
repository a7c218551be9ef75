#!/usr/bin/env bash
# Measures the backup data path against plain pg_dump, on this machine, in one run:
#
#   hack/bench-backup.sh     # pgbench scales 10 and 70 (150 MiB, 1 GiB), 512 MiB of random bytes
#   BENCH_SCALES="70" BENCH_RANDOM_MIB=0 BENCH_RUNS=1 hack/bench-backup.sh
#   BENCH_METHODS="raw s3" hack/bench-backup.sh      # skip the directory destination
#   BENCH_RESTORE=0 hack/bench-backup.sh             # dumps only
#   BENCH_BASELINE=/tmp/backup-operator-before BENCH_METHODS="s3 s3-baseline" hack/bench-backup.sh
#
# BENCH_BASELINE names another backup-operator binary (say, a copy built before a change),
# measured as the methods directory-baseline and s3-baseline in the same runs, interleaved
# with the others: on a shared machine that compares two builds under the same load, which
# two separate runs minutes apart do not. BENCH_OPERATOR measures a given binary as it is
# instead of building target/release/backup-operator.
#
# Starts a private PostgreSQL 17 server (hack/postgres-tools.sh's, the version of the backup
# image's tools, which the default zstd compression needs; initdb in a temporary directory,
# 127.0.0.1 on a free port, as the `postgres` user because initdb refuses root), fills one
# database per data set (`pgbench -i -s <scale>`; a table of random bytes, which unlike
# pgbench's rows hardly compresses), then times for each:
#
#   raw           pg_dump -Fc -f <file> (gzip, pg_dump's default): the reference
#   raw-none      pg_dump -Fc -Z none -f <file>: no compression at all, so about the time the
#                 server needs to COPY the data out, which no compression can beat
#   directory     target/release/backup-operator dump to BACKUP_DESTINATION_PATH, with the
#                 default Backup's settings (no BACKUP_COMPRESSION, no BACKUP_JOBS)
#   s3            the same to an S3 server on 127.0.0.1 (the s3s-fs binary, plain HTTP)
#   directory-j2  the directory method with BACKUP_JOBS=2 (pg_dump's directory format, packed)
#
# and, for the pgbench data sets (unless BENCH_RESTORE=0), restores of one dump into a new
# database, in turn BENCH_RUNS times:
#
#   pg_restore    pg_restore -d <db> of the raw method's file: one job, as plain tools do
#   restore       backup-operator restore of the directory method's artifact (default jobs)
#   restore-j2    backup-operator restore with BACKUP_JOBS=2 of directory-j2's artifact
#
# each under /usr/bin/time -v (wall time; CPU time and peak RSS of the process tree, that is
# of backup-operator with its pg_dump child) while sampling the backup-operator's own CPU time
# and VmHWM from /proc, and the S3 server's CPU time, which shares the machine. The three are
# interleaved BENCH_RUNS times (default 3) and the medians are reported, so a burst of other
# work on the machine does not land on one method only. Prints a Markdown table for
# docs/performance.md. Everything it starts is stopped and its temporary directory removed on
# exit, also on failure or Ctrl-C.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/deps.sh
source "$REPO/hack/lib/deps.sh"
SCALES=${BENCH_SCALES-10 70}
RANDOM_MIB=${BENCH_RANDOM_MIB-512}
RUNS=${BENCH_RUNS:-3}
RESTORE=${BENCH_RESTORE:-1}
BASELINE=${BENCH_BASELINE-}
# raw is always measured: the other methods are reported against it.
default_methods="raw raw-none directory s3 directory-j2${BASELINE:+ directory-baseline s3-baseline}"
METHODS="raw ${BENCH_METHODS:-$default_methods}"
METHODS=$(tr ' ' '\n' <<<"$METHODS" | awk 'NF && !seen[$0]++' | tr '\n' ' ')
for method in $METHODS; do
  case $method in
    raw | raw-none | directory | s3 | directory-j2) ;;
    directory-baseline | s3-baseline)
      [[ -x $BASELINE ]] || { echo "bench-backup: $method needs BENCH_BASELINE, an executable" >&2 && exit 1; }
      ;;
    *)
      echo "bench-backup: BENCH_METHODS: unknown method $method (raw, raw-none, directory, s3, directory-j2, directory-baseline, s3-baseline)" >&2
      exit 1
      ;;
  esac
done
# shellcheck source=hack/lib/log.sh
source "$REPO/hack/lib/log.sh"
# shellcheck source=hack/lib/bench.sh
source "$REPO/hack/lib/bench.sh"

bench_tools
bench_workdir bench-backup
PGDATA=$WORK/pgdata

# --- PostgreSQL ---------------------------------------------------------------------------

PGPORT=$(free_port)
# fsync off only speeds up pgbench -i; dumps read, and the data fits in the page cache.
bench_pg_init "$PGDATA" "fsync = off
synchronous_commit = off
full_page_writes = off"
bench_pg_start "$PGDATA" "$PGPORT" "$PGDATA/server.log"
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres

# --- S3 -----------------------------------------------------------------------------------

bench_s3_start

# --- measuring ----------------------------------------------------------------------------

# operator_dump BINARY OUT DB DESTINATION-ENV...: BINARY's dump of DB, timed into OUT.
# env execs the operator, so the pid /usr/bin/time waits for is the operator's.
operator_dump() {
  local binary=$1 out=$2 db=$3
  shift 3
  timed "$out" env "$@" "$binary" dump --dbname "$db" --pg-bin-dir "$PG_BIN" \
    --backup-name bench --retention 1 --termination-log /dev/null
}

# The JSON line dump prints on stdout says how large the artifact is.
report_size() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sizeBytes"])' "$1.stdout" >"$1.size"
}

run_raw() {
  timed "$1" "$PG_BIN/pg_dump" -Fc -f "$WORK/raw.dump" -d "$2"
  stat -c %s "$WORK/raw.dump" >"$1.size"
}
run_raw-none() {
  timed "$1" "$PG_BIN/pg_dump" -Fc -Z none -f "$WORK/raw.dump" -d "$2"
  stat -c %s "$WORK/raw.dump" >"$1.size"
}
run_directory-j2() {
  operator_dump "$OPERATOR" "$1" "$2" BACKUP_DESTINATION_PATH="$WORK/destination" BACKUP_JOBS=2 \
    BACKUP_TEMP_DIR="$WORK/scratch"
  report_size "$1"
}

# operator_restore OUT SOURCE-DB TARGET-DB DESTINATION JOBS: the operator's restore of the
# newest run of SOURCE-DB's series in the directory DESTINATION, timed into OUT.
operator_restore() {
  timed "$1" env BACKUP_DESTINATION_PATH="$4" BACKUP_DATABASE="$2" BACKUP_JOBS="$5" \
    BACKUP_TEMP_DIR="$WORK/scratch" "$OPERATOR" restore --dbname "$3" --pg-bin-dir "$PG_BIN" \
    --backup-name bench --termination-log /dev/null
}

# restores DATASET DB: the restore methods, each into a new database, BENCH_RUNS times.
restores() {
  local dataset=$1 db=$2 run method out
  log "$dataset: dumping once for the restores"
  rm -rf "$WORK/restore"
  mkdir -p "$WORK/restore/default" "$WORK/restore/j2"
  "$PG_BIN/pg_dump" -Fc -f "$WORK/restore/raw.dump" -d "$db"
  operator_dump "$OPERATOR" "$WORK/restore/dump-default" "$db" BACKUP_DESTINATION_PATH="$WORK/restore/default"
  operator_dump "$OPERATOR" "$WORK/restore/dump-j2" "$db" BACKUP_DESTINATION_PATH="$WORK/restore/j2" \
    BACKUP_JOBS=2 BACKUP_TEMP_DIR="$WORK/scratch"
  for run in $(seq "$RUNS"); do
    for method in pg_restore restore restore-j2; do
      psql_value "DROP DATABASE IF EXISTS restored" >/dev/null
      psql_value "CREATE DATABASE restored" >/dev/null
      out=$WORK/restored.$dataset.$method.$run
      case $method in
        pg_restore) timed "$out" "$PG_BIN/pg_restore" --no-owner -d restored "$WORK/restore/raw.dump" ;;
        restore) operator_restore "$out" "$db" restored "$WORK/restore/default" 1 ;;
        restore-j2) operator_restore "$out" "$db" restored "$WORK/restore/j2" 2 ;;
      esac
      log "$dataset restore run $run $method: $(cat "$out") (wall s, tree CPU s, tree KiB, own CPU s, own KiB)"
    done
  done
  psql_value "DROP DATABASE IF EXISTS restored" >/dev/null
  rm -rf "$WORK/restore"
}
run_directory() {
  operator_dump "${3:-$OPERATOR}" "$1" "$2" BACKUP_DESTINATION_PATH="$WORK/destination"
  report_size "$1"
}
run_s3() {
  # shellcheck disable=SC2046 # s3_env's words are NAME=VALUE without spaces
  operator_dump "${3:-$OPERATOR}" "$1" "$2" $(s3_env "$S3_BUCKET")
  report_size "$1"
}

# fill DATASET DB: creates DB and fills it. `s<N>` is `pgbench -i -s N`, whose rows are mostly
# blank padding that compresses about 50:1, so its dumps are small; `random<N>` is a table of
# N MiB of random bytes, which pg_dump cannot compress, for dumps many S3 parts long.
fill() {
  local dataset=$1 db=$2
  psql_value "CREATE DATABASE $db" >/dev/null
  case $dataset in
    s*)
      "$PG_BIN/pgbench" -i -q -s "${dataset#s}" "$db" >"$WORK/pgbench.log" 2>&1 ||
        die "pgbench -i failed: $(tail -n 20 "$WORK/pgbench.log")"
      ;;
    random*)
      "$PG_BIN/psql" --no-psqlrc -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION pgcrypto" \
        -c "CREATE TABLE noise AS SELECT g AS id, gen_random_bytes(1024) AS data
            FROM generate_series(1, ${dataset#random} * 1024) AS g" >/dev/null
      ;;
  esac
  "$PG_BIN/psql" --no-psqlrc -q -d "$db" -c "VACUUM ANALYZE" >/dev/null
}

datasets=()
for scale in $SCALES; do datasets+=("s$scale"); done
((RANDOM_MIB > 0)) && datasets+=("random$RANDOM_MIB")

started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for dataset in "${datasets[@]}"; do
  db=bench_$dataset
  log "$dataset: filling $db"
  fill "$dataset" "$db"
  psql_value "SELECT pg_database_size('$db')" >"$WORK/dbsize.$dataset"
  for run in $(seq "$RUNS"); do
    for method in $METHODS; do
      rm -rf "$WORK/raw.dump" "$WORK/destination" "${WORK:?}/s3/$S3_BUCKET" "$WORK/scratch"
      mkdir -p "$WORK/destination" "$WORK/s3/$S3_BUCKET" "$WORK/scratch"
      case $method in
        *-baseline) "run_${method%-baseline}" "$WORK/result.$dataset.$method.$run" "$db" "$BASELINE" ;;
        *) "run_$method" "$WORK/result.$dataset.$method.$run" "$db" ;;
      esac
      log "$dataset run $run $method: $(cat "$WORK/result.$dataset.$method.$run") (wall s, tree CPU s, tree KiB, own CPU s, own KiB, S3 server CPU s)"
    done
  done
  if ((RESTORE)) && [[ $dataset == s* ]]; then
    mkdir -p "$WORK/scratch"
    restores "$dataset" "$db"
  fi
  # One database at a time: the next one needs the disk and the page cache.
  psql_value "DROP DATABASE $db" >/dev/null
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "Started $started_at on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo);" \
  "load average $load_before before, $load_after after;" \
  "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'); median of $RUNS runs;" \
  "$(bench_commit)${BASELINE:+; the *-baseline methods ran $BASELINE}."
echo
echo "Throughput is the database's size on disk over the wall time; \"vs. raw\" is raw pg_dump -Fc's wall time over the method's."
echo
echo "| data | method | dump size | wall time | throughput | vs. raw pg_dump | CPU, process tree | CPU, backup-operator | CPU, S3 server | peak RSS, process tree | peak RSS, backup-operator |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for dataset in "${datasets[@]}"; do
  case $dataset in
    s*) label="pgbench -s ${dataset#s}" ;;
    *) label="${dataset#random} MiB random bytes" ;;
  esac
  label="$label ($(mib "$(cat "$WORK/dbsize.$dataset")" 0))"
  dbsize=$(cat "$WORK/dbsize.$dataset")
  raw_seconds=
  for method in $METHODS; do
    # One file per run (result.<dataset>.<method>.<run>), not their .size companions.
    mapfile -t files < <(compgen -G "$WORK/result.$dataset.$method.*[0-9]")
    seconds=$(printf "%.2f" "$(median 1 "${files[@]}")")
    size=$(median 1 "${files[@]/%/.size}")
    rate=$(awk -v s="$dbsize" -v t="$seconds" 'BEGIN {printf "%.1f", s / 1e6 / t}')
    own_cpu="$(median 4 "${files[@]}") s" own_rss=$(mib $(($(median 5 "${files[@]}") * 1024)) 1)
    server_cpu="$(median 6 "${files[@]}") s"
    case $method in
      raw) raw_seconds=$seconds ratio="1.00" own_cpu="(pg_dump)" own_rss="(pg_dump)" server_cpu="" ;;
      raw-none) own_cpu="(pg_dump)" own_rss="(pg_dump)" server_cpu="" ;;
      directory*) server_cpu="" ;;
    esac
    [[ $method == raw ]] || ratio=$(awk -v t="$seconds" -v b="$raw_seconds" 'BEGIN {printf "%.2f", b / t}')
    printf '| %s | %s | %s | %s s | %s MB/s | %s | %s s | %s | %s | %s | %s |\n' "$label" \
      "$method" "$(mib "$size" 1)" "$seconds" "$rate" "$ratio" "$(median 2 "${files[@]}")" \
      "$own_cpu" "$server_cpu" "$(mib $(($(median 3 "${files[@]}") * 1024)) 1)" "$own_rss"
  done
done

((RESTORE)) || exit 0
restored_sets=()
for dataset in "${datasets[@]}"; do [[ $dataset == s* ]] && restored_sets+=("$dataset"); done
((${#restored_sets[@]})) || exit 0
echo
echo "### Restore"
echo
echo "One dump of each pgbench data set restored into a new database; median of $RUNS runs. \"vs. pg_restore\" is single-job pg_restore's wall time of the raw -Fc file over the method's."
echo
echo "| data | method | wall time | vs. pg_restore | CPU, process tree | peak RSS, process tree | peak RSS, backup-operator |"
echo "|---|---|---|---|---|---|---|"
for dataset in "${restored_sets[@]}"; do
  label="pgbench -s ${dataset#s} ($(mib "$(cat "$WORK/dbsize.$dataset")" 0))"
  base=
  for method in pg_restore restore restore-j2; do
    mapfile -t files < <(compgen -G "$WORK/restored.$dataset.$method.*[0-9]")
    seconds=$(printf "%.2f" "$(median 1 "${files[@]}")")
    [[ -n $base ]] || base=$seconds
    own_rss=$(mib $(($(median 5 "${files[@]}") * 1024)) 1)
    [[ $method == pg_restore ]] && own_rss="(pg_restore)"
    printf '| %s | %s | %s s | %s | %s s | %s | %s |\n' "$label" "$method" "$seconds" \
      "$(awk -v t="$seconds" -v b="$base" 'BEGIN {printf "%.2f", b / t}')" \
      "$(median 2 "${files[@]}")" "$(mib $(($(median 3 "${files[@]}") * 1024)) 1)" "$own_rss"
  done
done
