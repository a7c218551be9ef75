#!/usr/bin/env bash
# Measures the physical backup data path (issue 17) on this machine, in one run:
#
#   hack/bench-physical.sh           # pgbench -s 70 (1 GiB), every part
#   BENCH_PARTS="lag rpo" BENCH_RPO_RUNS=3 hack/bench-physical.sh
#   BENCH_SCALE=10 BENCH_RUNS=1 BENCH_LAG_SECONDS=30 BENCH_RECOVERY_WAL_MIB=128 hack/bench-physical.sh
#
# Starts a private PostgreSQL 17 server (hack/postgres-tools.sh's; initdb in a temporary
# directory as the `postgres` user, 127.0.0.1 on a free port; fsync off, which only spares the
# shared disk: every other setting, synchronous commits and full-page writes included, is the
# default) and an S3 server on 127.0.0.1 (s3s-fs), fills `pgbench -i -s BENCH_SCALE` (70), then
# runs the backup-operator's subcommands as the Pods and Jobs run them, settings from the
# environment, with the archive on S3:
#
#   base-backup  BENCH_RUNS (3) rounds, interleaved, medians: pg_basebackup -Ft -X none into a
#                file with the compression our base-backup uses (client-lz4; raw-lz4) and
#                without (raw-none), against `backup-operator base-backup` to a directory
#                and to S3 (pg_basebackup into a pipe, SHA-256 on the way, the stored archive
#                read back and checked, the manifest), each under /usr/bin/time -v as in
#                bench-backup.sh. Throughput is the database's size over the wall time.
#   lag          `archive-wal` with its defaults streams while `pgbench -R BENCH_LAG_RATE`
#                (500 transactions/s) runs for BENCH_LAG_SECONDS (120); every 100 ms a probe
#                (hack/bench-physical-probe.py) reads the server's insert position and the
#                archiver's /status: a segment's lag is from the first poll that sees the
#                insert position past it to the first that sees it as lastArchivedSegment.
#   recovery     a base backup, then unthrottled pgbench until BENCH_RECOVERY_WAL_MIB (1024)
#                of WAL are archived; then `prepare-recovery` into a new directory (fetch and
#                verify the base backup and the WAL), and a server started on it (fsync on)
#                replays to the end and promotes: timed until a write succeeds there.
#   rpo          BENCH_RPO_RUNS (5) times per kind in BENCH_RPO_KINDS ("both server"): a
#                writer commits a row every 100 ms, noting when each commit is acknowledged;
#                after a random 20 to 40 s the server's process group is killed (SIGKILL)
#                and, for `both`, the archiver's (with its pg_receivewal) at the same moment;
#                for `server`, the archiver keeps running until it has uploaded the partial
#                segment once more (or 15 s). Then `prepare-recovery` to the end of the
#                archive and a server on it: the RPO is the time between the last
#                acknowledged commit and the commit of the newest row recovered.
#
# BENCH_PARTS picks parts (default "base-backup lag recovery rpo"). BENCH_OPERATOR measures a
# given binary instead of building target/release/backup-operator. Prints Markdown for
# docs/performance.md under `### ` headings (hack/record-bench.py). Everything it starts is
# stopped and its temporary directory removed on exit, also on failure or Ctrl-C.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCALE=${BENCH_SCALE:-70}
RUNS=${BENCH_RUNS:-3}
LAG_SECONDS=${BENCH_LAG_SECONDS:-120}
LAG_RATE=${BENCH_LAG_RATE:-500}
RECOVERY_WAL_MIB=${BENCH_RECOVERY_WAL_MIB:-1024}
RPO_RUNS=${BENCH_RPO_RUNS:-5}
RPO_KINDS=${BENCH_RPO_KINDS:-both server}
PARTS=${BENCH_PARTS:-base-backup lag recovery rpo}
PROBE=$REPO/hack/bench-physical-probe.py
# The archive of the lag, recovery and rpo parts; the base-backup part empties its own.
ARCHIVE_BUCKET=archive

# shellcheck source=hack/lib/deps.sh
source "$REPO/hack/lib/deps.sh"
# shellcheck source=hack/lib/log.sh
source "$REPO/hack/lib/log.sh"
# shellcheck source=hack/lib/bench.sh
source "$REPO/hack/lib/bench.sh"

for part in $PARTS; do
  case $part in
    base-backup | lag | recovery | rpo) ;;
    *) die "BENCH_PARTS: unknown part $part (base-backup, lag, recovery, rpo)" ;;
  esac
done
for kind in $RPO_KINDS; do
  [[ $kind == both || $kind == server ]] || die "BENCH_RPO_KINDS: unknown kind $kind (both, server)"
done
wants() { [[ " $PARTS " == *" $1 "* ]]; }

bench_tools
bench_workdir bench-physical
export PG_BIN
PGDATA=$WORK/pgdata
PGPORT=$(free_port)
bench_pg_init "$PGDATA" "fsync = off"
bench_pg_start "$PGDATA" "$PGPORT" "$WORK/server.log"
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
bench_s3_start
mkdir -p "$WORK/s3/$ARCHIVE_BUCKET"

# The settings every subcommand reads, as the Jobs get them; prepare-recovery files under
# BACKUP_DATABASE.
operator_env() {
  echo "PGDATABASE=postgres" "PG_BIN_DIR=$PG_BIN" "BACKUP_NAME=bench" "BACKUP_DATABASE=bench" \
    "TERMINATION_LOG_PATH=/dev/null" "RUST_LOG=warn"
}
# shellcheck disable=SC2046 # the *_env functions print NAME=VALUE words without spaces
archive_env() { echo $(operator_env) $(s3_env "$ARCHIVE_BUCKET"); }

# --- the archiver ---------------------------------------------------------------------------

ARCHIVER_PID=
ARCHIVER_ADDRESS=
archiver_status() { python3 "$PROBE" status "$ARCHIVER_ADDRESS" "$1" 2>/dev/null; }

# archiver_start: archive-wal with its defaults into the archive bucket, in a session of its
# own so that it and its pg_receivewal can be killed together; waits until it streams.
archiver_start() {
  local spool=$WORK/spool
  rm -rf "$spool"
  mkdir -p "$spool"
  ARCHIVER_ADDRESS=127.0.0.1:$(free_port)
  # shellcheck disable=SC2046
  setsid env $(archive_env) WAL_SPOOL_DIR="$spool" WAL_STATUS_ADDRESS="$ARCHIVER_ADDRESS" \
    "$OPERATOR" archive-wal >>"$WORK/archiver.log" 2>&1 &
  ARCHIVER_PID=$!
  bench_track "-$ARCHIVER_PID"
  for _ in $(seq 600); do
    [[ $(archiver_status streaming) == True ]] && return
    kill -0 "$ARCHIVER_PID" 2>/dev/null || die "archive-wal exited: $(tail -n 20 "$WORK/archiver.log")"
    sleep 0.1
  done
  die "archive-wal did not stream within 60 s: $(tail -n 20 "$WORK/archiver.log")"
}

archiver_stop() {
  kill -TERM "$ARCHIVER_PID" 2>/dev/null || true
  wait "$ARCHIVER_PID" 2>/dev/null || true
  kill -KILL -- "-$ARCHIVER_PID" 2>/dev/null || true
}

# archived_through SEGMENT TIMEOUT: waits until lastArchivedSegment is SEGMENT or later.
archived_through() {
  local deadline=$((SECONDS + $2)) last
  while ((SECONDS < deadline)); do
    last=$(archiver_status lastArchivedSegment)
    # Compared without the timeline, the first 8 digits.
    if [[ $last != null ]] && ! [[ ${last:8} < ${1:8} ]]; then return; fi
    sleep 0.1
  done
  die "segment $1 was not archived within $2 s (last: $last): $(tail -n 20 "$WORK/archiver.log")"
}

# switch_and_archive TIMEOUT: closes the current segment and waits until it is archived.
# A segment nothing was written to since the last switch would not switch: write a record.
switch_and_archive() {
  local segment
  segment=$(psql_value "SELECT pg_walfile_name(pg_logical_emit_message(false, 'bench', 'switch'))")
  psql_value "SELECT pg_switch_wal()" >/dev/null
  archived_through "$segment" "$1"
}

# base_backup_to_archive: one base backup into the archive; prints its start LSN.
base_backup_to_archive() {
  # shellcheck disable=SC2046
  env $(archive_env) "$OPERATOR" base-backup >"$WORK/base-backup.json" 2>"$WORK/base-backup.log" ||
    die "base-backup failed: $(tail -n 20 "$WORK/base-backup.log")"
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["baseBackup"]["startLsn"])' \
    "$WORK/base-backup.json"
}

# --- recovering -----------------------------------------------------------------------------

RECOVERED=$WORK/recovered
RECOVERED_PORT=
RECOVERED_PID=

# recover OUT: prepare-recovery to the end of the archive into RECOVERED (timed into OUT, as
# in bench-backup.sh), then a server on it until a write succeeds. Appends to OUT the seconds
# from the start of prepare-recovery to that write, and from the server's start to it.
recover() {
  local out=$1 started prepared writable
  rm -rf "$RECOVERED" "$WORK/recovered.log"
  started=$(date +%s.%N)
  # shellcheck disable=SC2046
  timed "$out" env $(archive_env) RECOVERY_DATA_DIR="$RECOVERED" "$OPERATOR" prepare-recovery
  # The recovery Job runs as the postgres user; here it ran as whoever runs the benchmark.
  ((EUID == 0)) && chown -R postgres: "$RECOVERED"
  prepared=$(date +%s.%N)
  RECOVERED_PORT=$(free_port)
  # Started directly rather than by pg_ctl, which returns before the server writes its pid
  # file: while the server lives, so does this child. It accepts no connection until it has
  # replayed everything. The base backup carries fsync = off; a real recovery syncs.
  bench_pg_track "$RECOVERED"
  as_postgres "$PG_BIN/postgres" -D "$RECOVERED" -p "$RECOVERED_PORT" -c fsync=on \
    >"$WORK/recovered.log" 2>&1 &
  RECOVERED_PID=$!
  until PGPORT=$RECOVERED_PORT "$PG_BIN/psql" --no-psqlrc -tAq -d postgres \
    -c "CREATE TABLE IF NOT EXISTS bench_recovered ()" >/dev/null 2>&1; do
    kill -0 "$RECOVERED_PID" 2>/dev/null ||
      die "the recovered server exited: $(tail -n 20 "$WORK/recovered.log")"
    sleep 0.1
  done
  writable=$(date +%s.%N)
  awk -v s="$started" -v p="$prepared" -v w="$writable" '{printf "%s %.2f %.2f\n", $0, w - s, w - p}' \
    "$out" >"$out.tmp" && mv "$out.tmp" "$out"
}

recovered_stop() {
  as_postgres "$PG_BIN/pg_ctl" stop --pgdata "$RECOVERED" --mode immediate >/dev/null 2>&1 || true
  wait "$RECOVERED_PID" 2>/dev/null || true
  rm -rf "$RECOVERED"
}

# lsn_bytes FROM TO: the bytes of WAL from one LSN to the other.
lsn_bytes() { psql_value "SELECT pg_wal_lsn_diff('$2', '$1')::bigint"; }

# --- filling --------------------------------------------------------------------------------

started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "filling pgbench -s $SCALE"
psql_value "CREATE DATABASE bench" >/dev/null
"$PG_BIN/pgbench" -i -q -s "$SCALE" bench >"$WORK/pgbench.log" 2>&1 ||
  die "pgbench -i failed: $(tail -n 20 "$WORK/pgbench.log")"
"$PG_BIN/psql" --no-psqlrc -q -d bench -c "VACUUM ANALYZE" \
  -c "CREATE TABLE rpo_writes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL)" >/dev/null
psql_value "CHECKPOINT" >/dev/null
cluster_bytes=$(psql_value "SELECT sum(pg_database_size(oid)) FROM pg_database")
cluster_label="pgbench -s $SCALE ($(mib "$cluster_bytes" 0) in all databases)"
header() {
  echo "Started $started_at on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo);" \
    "load average $load_before before this part, $(cut -d' ' -f1-3 /proc/loadavg) after;" \
    "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'); $1; $(bench_commit)."
}

# --- base backup throughput -----------------------------------------------------------------

# raw_base_backup OUT COMPRESS: pg_basebackup as our base-backup runs it, into files.
raw_base_backup() {
  timed "$1" "$PG_BIN/pg_basebackup" --pgdata="$WORK/raw" --format=tar --wal-method=none \
    --compress="$2" --checkpoint=fast
  stat -c %s "$WORK"/raw/* | awk '{s += $1} END {print s}' >"$1.size"
}
run_raw-lz4() { raw_base_backup "$1" client-lz4; }
run_raw-none() { raw_base_backup "$1" none; }
operator_base_backup() {
  local out=$1
  shift
  # shellcheck disable=SC2046
  timed "$out" env $(operator_env) "$@" "$OPERATOR" base-backup
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["baseBackup"]["sizeBytes"])' \
    "$out.stdout" >"$out.size"
}
run_directory() { operator_base_backup "$1" BACKUP_DESTINATION_PATH="$WORK/destination"; }
# shellcheck disable=SC2046
run_s3() { operator_base_backup "$1" $(s3_env "$S3_BUCKET"); }

if wants base-backup; then
  methods="raw-lz4 raw-none directory s3"
  for run in $(seq "$RUNS"); do
    for method in $methods; do
      rm -rf "$WORK/raw" "$WORK/destination" "${WORK:?}/s3/$S3_BUCKET"
      mkdir -p "$WORK/destination" "$WORK/s3/$S3_BUCKET"
      "run_$method" "$WORK/base.$method.$run"
      log "base backup run $run $method: $(cat "$WORK/base.$method.$run") (wall s, tree CPU s, tree KiB, own CPU s, own KiB, S3 server CPU s)"
    done
  done
  rm -rf "$WORK/raw" "$WORK/destination" "${WORK:?}/s3/$S3_BUCKET"
  echo "### Base backup"
  echo
  header "median of $RUNS runs"
  echo
  echo "Throughput is the size of the server's databases over the wall time (MB = 10⁶ bytes); \"vs. raw-lz4\" is pg_basebackup's wall time with the same compression (client-lz4) over the method's."
  echo
  echo "| data | method | backup size | wall time | throughput | vs. raw-lz4 | CPU, process tree | CPU, backup-operator | CPU, S3 server | peak RSS, process tree | peak RSS, backup-operator |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  base_seconds=
  for method in $methods; do
    mapfile -t files < <(compgen -G "$WORK/base.$method.*[0-9]")
    seconds=$(printf "%.2f" "$(median 1 "${files[@]}")")
    [[ -n $base_seconds ]] || base_seconds=$seconds
    own_cpu="$(median 4 "${files[@]}") s" own_rss=$(mib $(($(median 5 "${files[@]}") * 1024)) 1)
    server_cpu="$(median 6 "${files[@]}") s"
    case $method in
      raw-*) own_cpu="(pg_basebackup)" own_rss="(pg_basebackup)" server_cpu="" ;;
      directory) server_cpu="" ;;
    esac
    printf '| %s | %s | %s | %s s | %s MB/s | %s | %s s | %s | %s | %s | %s |\n' "$cluster_label" \
      "$method" "$(mib "$(median 1 "${files[@]/%/.size}")" 1)" "$seconds" \
      "$(awk -v s="$cluster_bytes" -v t="$seconds" 'BEGIN {printf "%.1f", s / 1e6 / t}')" \
      "$(awk -v t="$seconds" -v b="$base_seconds" 'BEGIN {printf "%.2f", b / t}')" \
      "$(median 2 "${files[@]}")" "$own_cpu" "$server_cpu" \
      "$(mib $(($(median 3 "${files[@]}") * 1024)) 1)" "$own_rss"
  done
  echo
  every=()
  for method in $methods; do
    every+=("$(cat "$WORK"/base."$method".*[0-9] | cut -d' ' -f1 | paste -sd' ' -)")
  done
  echo "Every run, wall seconds (${methods// /; }): $(printf '%s; ' "${every[@]}" | sed 's/; $//')."
  echo
fi

# --- the rest needs the archiver --------------------------------------------------------------

if wants lag || wants recovery || wants rpo; then
  log "starting archive-wal"
  archiver_start
fi

if wants lag; then
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  log "archive lag: pgbench -R $LAG_RATE for $LAG_SECONDS s"
  read -r count lag_median lag_p95 lag_max unarchived < <(python3 "$PROBE" lag "$ARCHIVER_ADDRESS" \
    "$WORK/lag.segments" 120 -- "$PG_BIN/pgbench" -n -c 4 -j 2 -R "$LAG_RATE" -T "$LAG_SECONDS" bench)
  wal_mib=$(awk -v n="$((count + unarchived))" -v t="$LAG_SECONDS" 'BEGIN {printf "%.1f", n * 16 / t}')
  log "archive lag: $count segments, median $lag_median s, p95 $lag_p95 s, max $lag_max s, $unarchived never archived"
  echo "### Archive lag"
  echo
  header "archive-wal with its defaults, to S3; pgbench -R $LAG_RATE -c 4 for $LAG_SECONDS s"
  echo
  echo "From the first 100 ms poll that saw the server's insert position past a segment to the first that saw it as the archiver's lastArchivedSegment; p95 by nearest rank."
  echo
  echo "| load | segments switched | WAL rate | median lag | p95 | max | never archived |"
  echo "|---|---|---|---|---|---|---|"
  echo "| pgbench -R $LAG_RATE on $cluster_label | $count | $wal_mib MiB/s | $lag_median s | $lag_p95 s | $lag_max s | $unarchived |"
  echo
  echo "Every segment's lag, seconds: $(awk '{print $2}' "$WORK/lag.segments" | tr '\n' ' ' | sed 's/ $//')."
  echo
fi

if wants recovery; then
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  log "recovery: base backup"
  start_lsn=$(base_backup_to_archive)
  log "recovery: pgbench until $RECOVERY_WAL_MIB MiB of WAL after $start_lsn"
  until (($(lsn_bytes "$start_lsn" "$(psql_value "SELECT pg_current_wal_lsn()")") >= RECOVERY_WAL_MIB * 1048576)); do
    "$PG_BIN/pgbench" -n -c 4 -j 2 -T 10 bench >>"$WORK/pgbench.log" 2>&1 || die "pgbench failed"
  done
  load_end=$(date +%s.%N)
  switch_and_archive 600
  catch_up=$(awk -v s="$load_end" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
  log "recovery: archived $catch_up s after the load; prepare-recovery and replay"
  recover "$WORK/recovery"
  redo=$(grep -o 'redo done at [0-9A-F]*/[0-9A-F]*' "$WORK/recovered.log" | awk '{print $4}' | tail -n 1)
  [[ -n $redo ]] || die "no 'redo done' in the recovered server's log: $(tail -n 20 "$WORK/recovered.log")"
  redo_seconds=$(grep -o 'redo done at .*elapsed: [0-9.]* s' "$WORK/recovered.log" | awk '{print $(NF - 1)}' | tail -n 1)
  recovered_stop
  read -r prepare_wall prepare_cpu _ _ prepare_rss _ to_write server_to_write <"$WORK/recovery"
  wal_bytes=$(lsn_bytes "$start_lsn" "$redo")
  log "recovery: $wal_bytes bytes of WAL; prepare $prepare_wall s, server start to write $server_to_write s, redo $redo_seconds s"
  gib_min() { awk -v b="$wal_bytes" -v t="$1" 'BEGIN {printf "%.2f", b / 1073741824 / t * 60}'; }
  echo "### Recovery"
  echo
  header "the archive on S3"
  echo
  echo "WAL replayed: from the base backup's start LSN $start_lsn to the end of redo $redo. The server on the prepared directory ran with fsync on."
  echo
  echo "| data | WAL replayed | prepare-recovery (fetch, verify) | CPU, prepare-recovery | peak RSS, prepare-recovery | redo (server's log) | server start to first write | prepare-recovery start to first write | replay speed (redo) | replay speed (server start to write) | archived after the load |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  echo "| $cluster_label | $(mib "$wal_bytes" 0) | $prepare_wall s | $prepare_cpu s | $(mib $((prepare_rss * 1024)) 1) | $redo_seconds s | $server_to_write s | $to_write s | $(gib_min "$redo_seconds") GiB/min | $(gib_min "$server_to_write") GiB/min | $catch_up s |"
  echo
fi

if wants rpo; then
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  # A fresh base backup, so that each recovery replays only the runs' WAL.
  log "rpo: base backup"
  base_backup_to_archive >/dev/null
  switch_and_archive 120
  for run in $(seq "$RPO_RUNS"); do
    for kind in $RPO_KINDS; do
      if ! kill -0 "$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null)" 2>/dev/null; then
        bench_pg_start "$PGDATA" "$PGPORT" "$WORK/server.log"
      fi
      kill -0 "$ARCHIVER_PID" 2>/dev/null || archiver_start
      acks=$WORK/rpo.$kind.$run.acks
      : >"$acks"
      python3 "$PROBE" writer bench "$acks" 2>>"$WORK/writer.log" &
      writer=$!
      sleep $((20 + RANDOM % 21)).$((RANDOM % 10))
      postmaster=$(head -n 1 "$PGDATA/postmaster.pid")
      if [[ $kind == both ]]; then
        kill -KILL -- "-$postmaster" "-$ARCHIVER_PID"
        wait "$ARCHIVER_PID" 2>/dev/null || true
      else
        killed_at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
        kill -KILL -- "-$postmaster"
        # The archiver ships the partial segment every sync interval while it changed.
        for _ in $(seq 150); do
          uploaded=$(archiver_status partialUploadedTime)
          [[ $uploaded != null && $uploaded > "$killed_at" ]] && break
          sleep 0.1
        done
      fi
      wait "$writer" || true
      recover "$WORK/rpo.$kind.$run"
      newest=$(PGPORT=$RECOVERED_PORT "$PG_BIN/psql" --no-psqlrc -tAq -d bench -c "SELECT coalesce(max(id), 0) FROM rpo_writes")
      recovered_stop
      [[ $kind == server ]] && archiver_stop
      # The newest row's commit, as the writer saw it acknowledged (earlier runs' rows count).
      rpo=$(cat "$WORK"/rpo.*.acks | awk -v id="$newest" -v last="$(tail -n 1 "$acks" | cut -d' ' -f2)" '
        $1 == id {t = $2} END {if (t == "") exit 1; printf "%.2f", (last > t) ? last - t : 0}') ||
        die "rpo run $run: the newest recovered row $newest is none the writer saw acknowledged"
      echo "$rpo" >"$WORK/rpo.$kind.$run.rpo"
      log "rpo run $run $kind: RPO $rpo s (last acknowledged id $(tail -n 1 "$acks" | cut -d' ' -f1), newest recovered $newest); to first write $(cut -d' ' -f7 "$WORK/rpo.$kind.$run") s"
    done
  done
  echo "### RPO"
  echo
  header "$RPO_RUNS runs of each kind; archive-wal with its defaults (partial segment every 10 s), to S3"
  echo
  echo "The writer commits a row every 100 ms; the RPO is the time from the commit of the newest recovered row to the last commit acknowledged before the kill, both as the writer saw them acknowledged."
  echo
  echo "| lost | runs, RPO | median | max | prepare-recovery start to first write (median) |"
  echo "|---|---|---|---|---|"
  for kind in $RPO_KINDS; do
    case $kind in
      both) label="server and archiver together (SIGKILL)" ;;
      server) label="server only (SIGKILL); the archiver uploads its partial segment" ;;
    esac
    # In the order of the runs: compgen lists in no particular order.
    mapfile -t files < <(compgen -G "$WORK/rpo.$kind.*.rpo" | sort -V)
    mapfile -t recoveries < <(compgen -G "$WORK/rpo.$kind.*[0-9]")
    printf '| %s | %s | %s s | %s s | %s s |\n' "$label" "$(cat "${files[@]}" | sed 's/$/ s/' | paste -sd, - | sed 's/,/, /g')" \
      "$(median 1 "${files[@]}")" "$(sort -n "${files[@]}" | tail -n 1)" "$(median 7 "${recoveries[@]}")"
  done
  echo
fi
