# shellcheck shell=bash
# Runs a script's long steps as numbered phases: one short line each on the terminal, with
# the time it took, and the full output in a log file per phase. On failure: the last lines
# of the failing phase's log, where the whole log is, and what to try. Sourced.
#
#   phases_init NAME TOTAL     logs under /var/tmp/pgop-NAME/ (PGOP_LOG_DIR to change)
#   phase TITLE HINT CMD...    run CMD as the next phase; HINT says what to do if it fails
#   phases_done                the total time

phases_init() {
  PHASES_NAME=$1
  PHASES_TOTAL=$2
  PHASES_DONE=0
  PHASES_STARTED=$SECONDS
  PHASES_DIR=${PGOP_LOG_DIR:-/var/tmp/pgop-$1}
  mkdir -p "$PHASES_DIR"
  rm -f "$PHASES_DIR"/*.log
  echo "$PHASES_NAME: full logs in $PHASES_DIR/"
}

_phases_duration() {
  local s=$1
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

# phase TITLE HINT CMD...: CMD's output goes to the phase's log only.
phase() {
  local title=$1 hint=$2 started=$SECONDS rc=0 log slug
  shift 2
  PHASES_DONE=$((PHASES_DONE + 1))
  # The file name from the title without its parenthesised remarks.
  slug=${title%% (*}
  slug=$(tr -cs 'a-z0-9' '-' <<<"${slug,,}")
  log=$(printf '%s/%02d-%s.log' "$PHASES_DIR" "$PHASES_DONE" "${slug%-}")
  printf '[%d/%d] %s ... ' "$PHASES_DONE" "$PHASES_TOTAL" "$title"
  "$@" >"$log" 2>&1 || rc=$?
  if ((rc == 0)); then
    echo "done ($(_phases_duration $((SECONDS - started))))"
    return 0
  fi
  echo "FAILED after $(_phases_duration $((SECONDS - started)))"
  echo "---- last lines of $log"
  tail -n 25 "$log" | sed 's/^/  /'
  echo "----"
  echo "$PHASES_NAME: '$title' failed (exit $rc). Full log: $log"
  echo "$PHASES_NAME: $hint"
  exit "$rc"
}

phases_done() {
  echo "$PHASES_NAME: all done in $(_phases_duration $((SECONDS - PHASES_STARTED)))"
}
