# shellcheck shell=bash
# Helpers to run long-lived daemons detached from the calling shell and to stop them again.
#
# Sourced by cluster-up.sh, cluster-down.sh and the node scripts. A pid file holds
# "<pid> <start time>" where the start time is field 22 of /proc/<pid>/stat: a pid alone can be
# reused by an unrelated process after a reboot or a long time, the pair cannot, so
# cluster-down.sh never signals a stranger.

# _proc_stat PID: the fields of /proc/PID/stat after the command name, which may contain
# spaces; in that list the state is 1st, the process group 3rd and the start time 20th.
_proc_stat() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  echo "${stat##*) }"
}

# proc_start_time PID: prints the kernel start time of PID (clock ticks since boot).
proc_start_time() {
  local fields
  read -r -a fields <<<"$(_proc_stat "$1")" || return 1
  ((${#fields[@]} >= 20)) || return 1
  echo "${fields[19]}"
}

# proc_start NAME PIDDIR LOGFILE CMD...: starts CMD in its own session, output to LOGFILE,
# and records it in PIDDIR/NAME.pid.
#
# setsid keeps the daemon out of the caller's process group, so a Ctrl-C in a terminal or a
# test runner's end does not take the cluster down, and the caller (cargo test waiting on
# this script's output) is not held by an inherited stdout.
# Open file descriptors other than 0-2 and 9 are inherited: do not call this with a pipe open.
proc_start() {
  local name=$1 piddir=$2 log=$3
  shift 3
  mkdir -p "$piddir" "$(dirname "$log")"
  # 9>&-: cluster-up.sh and cluster-down.sh hold their lock on fd 9; a daemon inheriting it
  # would keep the lock held for as long as it runs.
  setsid "$@" </dev/null >>"$log" 2>&1 9>&- &
  local pid=$!
  local start
  start=$(proc_start_time "$pid") || start=""
  echo "$pid $start" >"$piddir/$name.pid"
}

# proc_alive PIDFILE: true while the process recorded in PIDFILE runs (not a zombie).
proc_alive() {
  local pidfile=$1 pid start current state
  [[ -s $pidfile ]] || return 1
  read -r pid start <"$pidfile" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  local fields
  read -r -a fields <<<"$(_proc_stat "$pid")" || return 1
  ((${#fields[@]} >= 20)) || return 1
  current=${fields[19]}
  state=${fields[0]}
  [[ -z $start || $start == "$current" ]] || return 1
  # A killed daemon whose parent is gone can linger as a zombie until init reaps it.
  [[ $state != Z ]]
}

# proc_stop PIDFILE TIMEOUT_SECONDS: TERM, then KILL once TIMEOUT passes; removes PIDFILE.
# Signals the whole process group when the daemon leads one (proc_start makes it so), so
# helpers it forked go with it.
proc_stop() {
  local pidfile=$1 timeout=${2:-10} pid start target deadline
  if proc_alive "$pidfile"; then
    read -r pid start <"$pidfile"
    target=$pid
    local fields
    read -r -a fields <<<"$(_proc_stat "$pid")" || true
    [[ ${fields[2]:-} == "$pid" ]] && target=-$pid
    kill -TERM -- "$target" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while proc_alive "$pidfile" && ((SECONDS < deadline)); do sleep 0.1; done
    if proc_alive "$pidfile"; then
      echo "proc: $(basename "$pidfile" .pid) (pid $pid) ignored TERM for ${timeout}s, sending KILL" >&2
      kill -KILL -- "$target" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while proc_alive "$pidfile" && ((SECONDS < deadline)); do sleep 0.1; done
      if proc_alive "$pidfile"; then
        echo "proc: pid $pid survived KILL" >&2
        return 1
      fi
    fi
  fi
  rm -f "$pidfile"
}
