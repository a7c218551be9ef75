# Tasks for the PostgreSQL operators. Run through ./justw on a machine without `just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @{{just_executable()}} --list

# Regenerate deploy/crds from the Rust types in crates/api, and the charts' copies of them.
crds:
    cargo run -q -p pg-operators-api --bin crdgen -- deploy/crds
    hack/sync-chart-crds.sh

# Copy each operator's CRDs from deploy/crds into its chart; `--check` only compares.
chart-crds *args:
    hack/sync-chart-crds.sh {{args}}

# Build or install helm, kubeconform, promtool and prometheus (cached in ~/.cache/pg-operators/tools).
tools:
    hack/build-tools.sh

# Offline checks of what we ship: charts, manifests, alert rules, Grafana dashboard.
lint-charts:
    hack/lint-charts.sh

# Formatting, clippy, shellcheck on every script, the check that the backup data path stays
# free of kube, and the check that every program the scripts run is installed by the
# project (hack/deps), as CI runs them.
lint:
    hack/deps.sh machine lint
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --features scenarios/three-nodes -- -D warnings
    hack/check-data-path-deps.sh
    shellcheck -x .ci/run justw hack/*.sh hack/lib/*.sh hack/images/*/*.sh crates/*/src/*/scripts/*.sh
    hack/check-deps.py

# Install what the tests, the cluster and the image builds need (hack/deps/*.list), and the
# PostgreSQL 17 programs the backup tests run (hack/postgres-tools.sh).
deps:
    hack/deps.sh machine lint cluster node image test
    hack/postgres-tools.sh >/dev/null

# Build every binary of the workspace (dev profile).
build:
    cargo build --workspace --bins

# Make this machine fresh as far as the project is concerned: stop the cluster, remove the
# packages the project installed, its caches, state and built tools (see the README).
purge *args:
    hack/purge.sh {{args}}

# Run every test: unit tests, real PostgreSQL and S3, the control-plane scenarios and the
# end-to-end scenarios on one real node; then, on three nodes, the node tests (faults
# included), replication and failover, and the database scenario again; and the offline
# checks of charts and manifests.
# The operator images carry the same dev build the tests use (hack/build-operator-images.sh).
test: deps build
    hack/images.sh
    PGOP_SKIP_CARGO=1 hack/build-operator-images.sh
    PGOP_NODE=1 hack/cluster-up.sh
    eval "$(hack/build-tools.sh --env)" && PGOP_NODE=1 cargo test --workspace --no-fail-fast
    PGOP_NODE=1 PGOP_NODES=3 hack/cluster-up.sh
    eval "$(hack/build-tools.sh --env)" && export PGOP_NODE=1 PGOP_NODES=3 && \
      cargo test --workspace --features scenarios/three-nodes --test nodes --test replication && \
      cargo test --workspace --test e2e backup_and_restore
    hack/lint-charts.sh
    python3 -B -m unittest discover -s hack/tests

# Start (or reuse) the local cluster and print the KUBECONFIG export.
cluster-up:
    hack/cluster-up.sh

# Stop the local cluster and remove its state.
cluster-down:
    hack/cluster-down.sh

# Local cluster with both operators running and the sample resources applied.
up:
    hack/up.sh

# Control-plane benchmarks of the release binaries into docs/performance.md (failover on three
# nodes is `just bench-failover`): latency; 100 and 1,000 Databases with their Backups
# (BENCH_SIZES), this tree beside the commit before (BENCH_BASELINE) and beside a
# controller-runtime operator doing the same job (BENCH_COMPARE; the benchmark
# builds it with hack/build-comparison-operator.sh).
bench:
    hack/deps.sh machine cluster
    cargo build --release -p database-operator -p backup-operator
    hack/record-bench.py "just bench" docs/performance.md -- cargo bench -p bench --bench control_plane

# Backup data path (dump to a directory and to S3) against plain pg_dump, then the physical path
# on this host (base backup against pg_basebackup, archive lag, recovery speed, RPO), then time
# to Ready of a Database recovered from a physical Backup of 1 GiB on the local cluster
# (BENCH_RECOVERY_SCALE, 70; BENCH_RECOVERY_LOAD_SECONDS of pgbench after the base backup, 60),
# into docs/performance.md. The cluster's Jobs and archiver run release binaries, as shipped.
bench-backup:
    hack/record-bench.py "just bench-backup" docs/performance.md -- hack/bench-backup.sh
    hack/record-bench.py "just bench-backup" docs/performance.md -- hack/bench-physical.sh
    hack/deps.sh machine cluster node image test bench
    cargo build --release -p database-operator -p backup-operator
    PGOP_IMAGE_PROFILE=release PGOP_SKIP_CARGO=1 hack/build-operator-images.sh
    PGOP_NODE=1 hack/record-bench.py "just bench-backup" docs/performance.md -- \
      cargo bench -p bench --bench recovery

# On one Database of three instances, BENCH_FAILOVER_RUNS (10) runs of each fault on the primary
# (postgres killed, Pod deleted, node stopped, frozen, partitioned; BENCH_FAILOVER_KINDS) and of
# a switchover, each timed from the fault to the first write the new primary acknowledges
# through the read-write Service; then replication lag under pgbench (BENCH_LAG_SECONDS, 60;
# BENCH_LAG_RATE, 200 tps). The Pods run the database-operator image of this tree, built and
# imported as `just test` does.
# Failover, switchover and replication lag on the three-node cluster, into docs/performance.md.
bench-failover:
    hack/deps.sh machine cluster node image test bench
    cargo build --release -p database-operator
    hack/build-operator-images.sh
    PGOP_NODE=1 PGOP_NODES=3 hack/record-bench.py "just bench-failover" docs/performance.md -- \
      cargo bench -p bench --bench failover

# What CI runs.
ci: lint test
