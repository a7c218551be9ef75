#!/usr/bin/env bash
# node-exec.sh CGROUP NETNS MNTNS CMD...: runs CMD as a process of one node of the test
# cluster: in the node's cgroup (every hierarchy, so the kubelet's pods and every process the
# node starts stay below it, where hack/node.sh finds them to stop or freeze), its network
# namespace and its mount namespace. Execs, so CMD keeps this script's pid (proc_start records
# it). Called through node_exec in hack/lib/node.sh.
set -euo pipefail
cgroup=$1 netns=$2 mntns=$3
shift 3
for dir in /sys/fs/cgroup/*/"$cgroup"; do
  [[ -d $dir ]] || continue
  echo $$ >"$dir/cgroup.procs"
done
exec nsenter --net="$netns" --mount="$mntns" -- "$@"
