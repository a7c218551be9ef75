# shellcheck shell=bash
# What the host-side backup benchmarks (bench-backup.sh, bench-physical.sh) share: their tools,
# a private PostgreSQL server, an S3 server, timing a command, medians, and the tear-down of
# all they started. Sourced after hack/lib/deps.sh and hack/lib/log.sh, with REPO set.
#
#   bench_tools                 PG_BIN, S3S_FS and OPERATOR, each installed or built if missing
#   bench_workdir NAME          WORK, a temporary directory removed on exit with all below
#   bench_pg_init DIR [CONF]    initdb DIR as the postgres user, CONF appended to its config
#   bench_pg_start DIR PORT LOG [OPTION...]
#                               starts a server on DIR, 127.0.0.1:PORT, no unix socket
#   bench_s3_start              an s3s-fs server on WORK/s3 (S3_PORT, S3_PID, bucket S3_BUCKET)
#   timed OUT CMD...            see below
#   median COLUMN FILE...       the median of a column

# The S3 server the backup-operator's tests run in-process; 0.15 and later need a newer rustc.
S3S_FS_VERSION=${S3S_FS_VERSION:-0.14.1}
S3_ACCESS_KEY=bench-access-key
S3_SECRET_KEY=bench-secret-key-0c41
S3_BUCKET=bench
S3_PID=
# Servers (data directories) and processes to stop on exit; bench_track adds to them.
_bench_pgdatas=()
_bench_pids=()

bench_tools() {
  local cache_root="${PGOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-operators}"
  S3S_FS="$cache_root/tools/s3s-fs-$S3S_FS_VERSION/bin/s3s-fs"
  OPERATOR=${BENCH_OPERATOR:-${CARGO_TARGET_DIR:-$REPO/target}/release/backup-operator}
  deps_ensure bench machine || die "cannot install what the benchmark needs"
  PG_BIN=$("$REPO/hack/postgres-tools.sh")
  [[ -x $PG_BIN/pgbench ]] || die "no pgbench in $PG_BIN"
  command -v python3 >/dev/null || die "python3 is needed to pick free ports and read reports"

  if [[ ! -x $S3S_FS ]]; then
    log "building s3s-fs $S3S_FS_VERSION into ${S3S_FS%/bin/*} (once)"
    rm -rf "${S3S_FS%/bin/*}.partial"
    cargo install s3s-fs --locked --version "=$S3S_FS_VERSION" --features binary \
      --root "${S3S_FS%/bin/*}.partial" >&2
    mv "${S3S_FS%/bin/*}.partial" "${S3S_FS%/bin/*}"
  fi

  # A no-op when the binary is up to date; a stale one would measure other code. A binary
  # named by BENCH_OPERATOR (say, a copy built at another commit) is measured as it is.
  if [[ -z ${BENCH_OPERATOR-} ]]; then
    log "building the release backup-operator"
    (cd "$REPO" && cargo build --release -q -p backup-operator)
  fi
  [[ -x $OPERATOR ]] || die "$OPERATOR is not an executable"
}

# bench_commit: which build was measured, for the line that opens a report.
bench_commit() {
  if [[ -n ${BENCH_OPERATOR-} ]]; then
    echo "the backup-operator binary $OPERATOR"
  else
    echo "commit $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- crates/backup-operator crates/backup-data crates/backup-job crates/secret crates/error-text || echo ' with uncommitted changes to the backup-operator')"
  fi
}

as_postgres() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_track PID: a process (or, negative, a process group) to kill on exit.
bench_track() { _bench_pids+=("$1"); }
# bench_pg_track DIR: a server started otherwise than by bench_pg_start, stopped on exit.
bench_pg_track() { _bench_pgdatas+=("$1"); }

_bench_cleanup() {
  local status=$? dir pid
  for dir in "${_bench_pgdatas[@]}"; do
    if [[ -s $dir/postmaster.pid ]]; then
      as_postgres "$PG_BIN/pg_ctl" stop --pgdata "$dir" --mode immediate >/dev/null 2>&1 || true
    fi
  done
  for pid in "${_bench_pids[@]}" $S3_PID; do
    kill -- "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  [[ -n ${WORK-} ]] && rm -rf "$WORK"
  exit "$status"
}

bench_workdir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  # The postgres user writes its servers' logs and data directories below.
  ((EUID == 0)) && chown postgres: "$WORK"
  trap _bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# bench_pg_init DIR [CONF]: a new cluster in DIR, as the postgres user (initdb refuses root),
# trusting local connections, replication included; CONF is appended to postgresql.conf.
bench_pg_init() {
  local dir=$1
  mkdir -p "$dir"
  ((EUID == 0)) && chown postgres: "$dir"
  as_postgres "$PG_BIN/initdb" --pgdata "$dir" --username postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-sync >/dev/null
  printf '%s\n' "listen_addresses = '127.0.0.1'" "unix_socket_directories = ''" "${2-}" \
    >>"$dir/postgresql.conf"
}

# bench_pg_start DIR PORT LOG [OPTION...]: starts the server of DIR on 127.0.0.1:PORT and
# waits until it accepts connections; OPTIONs go to pg_ctl (--no-wait returns at once, -o to
# the server). pg_ctl starts it in a session of its own: its process group is its pid.
bench_pg_start() {
  local dir=$1 port=$2 log=$3
  shift 3
  bench_pg_track "$dir"
  as_postgres "$PG_BIN/pg_ctl" start --pgdata "$dir" --log "$log" --wait --timeout=300 \
    -o "-p $port" "$@" >/dev/null || die "the server on $dir did not start: $(tail -n 20 "$log")"
}

bench_s3_start() {
  mkdir -p "$WORK/s3/$S3_BUCKET"
  S3_PORT=$(free_port)
  "$S3S_FS" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS_KEY" \
    --secret-key "$S3_SECRET_KEY" "$WORK/s3" >"$WORK/s3s-fs.log" 2>&1 &
  S3_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break
    kill -0 "$S3_PID" 2>/dev/null || die "s3s-fs exited: $(tail -n 20 "$WORK/s3s-fs.log")"
    sleep 0.1
  done
}

# s3_env BUCKET: the backup-operator's environment for BUCKET on the S3 server of bench_s3_start.
s3_env() {
  echo "S3_ENDPOINT=http://127.0.0.1:$S3_PORT" "S3_BUCKET=$1" \
    "AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY"
}

TICKS=$(getconf CLK_TCK)
# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name, which may hold spaces).
cpu_ticks() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}

# timed OUT CMD...: runs CMD under /usr/bin/time -v and writes to OUT one line:
#   wall-s  tree-cpu-s  tree-peak-KiB  own-cpu-s  own-peak-KiB  s3-server-cpu-s
# The wall time, and the CPU time and peak RSS of the process tree (CMD and the children it
# waited for, pg_dump), are what /usr/bin/time reports. CMD's own CPU time and VmHWM are the
# last values read from /proc while it ran, every 50 ms (the data path streams, so nothing
# spikes at the end). The S3 server's CPU time is what it used meanwhile (0 without it).
timed() {
  local out=$1
  shift
  local hwm=0 own_ticks=0 pid="" line ticks server_before=0 server_after=0
  [[ -n $S3_PID ]] && server_before=$(cpu_ticks "$S3_PID")
  /usr/bin/time -v -o "$out.time" "$@" >"$out.stdout" 2>"$out.stderr" &
  local time_pid=$!
  while kill -0 "$time_pid" 2>/dev/null; do
    [[ -n $pid ]] || pid=$(cat "/proc/$time_pid/task/$time_pid/children" 2>/dev/null || true)
    pid=${pid%% *}
    if [[ -n $pid ]] && line=$(grep '^VmHWM:' "/proc/$pid/status" 2>/dev/null) &&
      ticks=$(cpu_ticks "$pid"); then
      line=${line#VmHWM:}
      hwm=${line%kB}
      own_ticks=$ticks
    fi
    sleep 0.05
  done
  if ! wait "$time_pid"; then
    cat "$out.stderr" >&2
    die "$* failed"
  fi
  [[ -n $S3_PID ]] && server_after=$(cpu_ticks "$S3_PID")
  # "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.34", "User time (seconds): 1.23", ...
  awk -v own_kib="$((hwm))" -v own_cpu="$own_ticks" -v server="$((server_after - server_before))" \
    -v hz="$TICKS" '
    /Elapsed \(wall clock\)/ {n = split($NF, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]}
    /User time|System time/ {cpu += $NF}
    /Maximum resident set size/ {tree = $NF}
    END {printf "%.2f %.2f %d %.2f %d %.2f\n", s, cpu, tree, own_cpu / hz, own_kib, server / hz}' \
    "$out.time" >"$out"
}

# median COLUMN FILE...: the median of the numbers in column COLUMN (1-based) of the files.
median() {
  local column=$1
  shift
  awk -v c="$column" '{print $c}' "$@" | sort -n |
    awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

mib() { awk -v b="$1" -v d="$2" 'BEGIN {printf "%.*f MiB", d, b / 1048576}'; }

psql_value() { "$PG_BIN/psql" --no-psqlrc -tAq -d postgres -c "$1"; }
