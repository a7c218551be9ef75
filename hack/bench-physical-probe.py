#!/usr/bin/env python3
"""The timing of hack/bench-physical.sh that needs a poll every 100 ms, which bash's
process per query would skew. It talks to the server through one long-lived psql (which
answers each query line at once), so the server sees one connection, not ten a second.

    bench-physical-probe.py status ADDRESS FIELD
        prints one field of the archiver's GET /status (JSON), `null` when unset
    bench-physical-probe.py lag ADDRESS OUT DRAIN-SECONDS -- LOAD-COMMAND...
        runs LOAD-COMMAND (pgbench) while polling, every 100 ms, the server's insert
        position and the archiver's lastArchivedSegment; a segment is switched when the
        insert position is first seen past it, archived when lastArchivedSegment is first
        seen at or past it. After the load it waits up to DRAIN-SECONDS for the segments it
        saw switched to be archived. Writes one line per segment to OUT, "segment lag-s",
        and prints "count median p95 max unarchived" (seconds; p95 by nearest rank)
    bench-physical-probe.py writer DBNAME OUT
        inserts a row into rpo_writes every 100 ms until the server goes away, appending
        "id unix-time" to OUT for each commit as soon as it is acknowledged

The server is the one of PGHOST, PGPORT and PGUSER; psql is PG_BIN/psql.
"""

import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.request

INTERVAL = 0.1


def usage() -> None:
    sys.exit(__doc__)


def status(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/status", timeout=2) as response:
        return json.load(response)


class Psql:
    """One psql session; each query is one line in and its one-line answer out."""

    def __init__(self, dbname: str) -> None:
        psql = os.path.join(os.environ["PG_BIN"], "psql")
        self.process = subprocess.Popen(
            [psql, "--no-psqlrc", "-tAq", "-v", "ON_ERROR_STOP=1", "-d", dbname],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def query(self, sql: str) -> str | None:
        """The answer, or None once the session has ended."""
        try:
            self.process.stdin.write(sql.rstrip(";") + ";\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return None
        line = self.process.stdout.readline()
        return line.strip() if line else None


def segment_number(name: str, segment_bytes: int) -> int:
    """The position of a WAL file name on its timeline (log and segment parts)."""
    per_log = 0x1_0000_0000 // segment_bytes
    return int(name[8:16], 16) * per_log + int(name[16:24], 16)


def lag(address: str, out: str, drain: float, load: list[str]) -> None:
    psql = Psql("postgres")
    segment_bytes = int(psql.query("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"))
    insert_sql = "SELECT pg_walfile_name(pg_current_wal_insert_lsn());"
    first = segment_number(psql.query(insert_sql), segment_bytes)
    switched: dict[int, float] = {}
    archived: dict[int, float] = {}
    current = first

    def poll() -> None:
        nonlocal current
        now = time.monotonic()
        position = segment_number(psql.query(insert_sql), segment_bytes)
        for segment in range(current, position):
            switched.setdefault(segment, now)
        current = max(current, position)
        try:
            last = status(address).get("lastArchivedSegment")
        except OSError:
            return
        if last:
            newest = segment_number(last, segment_bytes)
            for segment in switched:
                if segment <= newest:
                    archived.setdefault(segment, now)

    load_process = subprocess.Popen(load, stdout=subprocess.DEVNULL)
    while load_process.poll() is None:
        poll()
        time.sleep(INTERVAL)
    if load_process.returncode != 0:
        sys.exit(f"bench-physical-probe: the load {load} failed ({load_process.returncode})")
    measured = set(switched)
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline and not measured <= set(archived):
        poll()
        time.sleep(INTERVAL)
    with open(out, "w") as file:
        for segment in sorted(measured):
            value = f"{archived[segment] - switched[segment]:.2f}" if segment in archived else "-"
            file.write(f"{segment:X} {value}\n")
    lags = [archived[s] - switched[s] for s in measured if s in archived]
    print(summary(lags, len(measured) - len(lags)))


def summary(lags: list[float], unarchived: int) -> str:
    """"count median p95 max unarchived"; p95 by nearest rank."""
    if not lags:
        return f"0 - - - {unarchived}"
    lags = sorted(lags)
    p95 = lags[max(0, math.ceil(0.95 * len(lags)) - 1)]
    return f"{len(lags)} {statistics.median(lags):.2f} {p95:.2f} {lags[-1]:.2f} {unarchived}"


def writer(dbname: str, out: str) -> None:
    psql = Psql(dbname)
    with open(out, "a") as file:
        while True:
            started = time.monotonic()
            row = psql.query("INSERT INTO rpo_writes (at) VALUES (clock_timestamp()) RETURNING id;")
            if not row:
                return
            file.write(f"{row} {time.time():.3f}\n")
            file.flush()
            time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["status"] and len(args) == 3:
        value = status(args[1]).get(args[2])
        print("null" if value is None else value)
    elif args[:1] == ["lag"] and len(args) > 5 and args[4] == "--":
        lag(args[1], args[2], float(args[3]), args[5:])
    elif args[:1] == ["writer"] and len(args) == 3:
        writer(args[1], args[2])
    else:
        usage()


if __name__ == "__main__":
    main()
