//! CPU time of processes on this host, from `/proc`: the operators', and the API server's,
//! which serves every request they make.

use anyhow::{Context, Result};
use bench::readings;
use testenv::Cluster;

/// CPU time of process `pid` so far, user and system, in clock ticks.
pub fn ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    readings::proc_stat_cpu_ticks(&stat).with_context(|| format!("no CPU times in {path}"))
}

/// Clock ticks per second, the unit of [`ticks`].
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the system and touches no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux has reported 100 on every architecture for decades; sysconf fails only for an
    // unknown name.
    u64::try_from(hz).ok().filter(|hz| *hz > 0).unwrap_or(100)
}

/// The kube-apiserver's pid: from the pid file `hack/cluster-up.sh` wrote, checked against
/// the process's name (a stale file may name a pid reused since); else by scanning `/proc`,
/// for a control plane started some other way. `None` when there is none on this host.
pub fn api_server_pid(cluster: &Cluster) -> Option<u32> {
    const NAME: &str = "kube-apiserver";
    let is_api_server = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == NAME)
    };
    let from_file = std::fs::read_to_string(cluster.state_dir().join("pids/kube-apiserver.pid"))
        .ok()
        .and_then(|text| readings::pid_file(&text))
        .filter(|pid| is_api_server(*pid));
    from_file.or_else(|| {
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .find(|pid| is_api_server(*pid))
    })
}
