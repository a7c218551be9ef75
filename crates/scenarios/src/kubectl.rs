//! The cluster's own kubectl, for what a user would do with it.

/// Runs the cluster's own kubectl as admin; a failure fails the test with its stderr.
pub fn kubectl(cluster: &testenv::Cluster, args: &[&str]) -> String {
    let output = cluster
        .kubectl()
        .args(args)
        .output()
        .expect("running kubectl");
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
