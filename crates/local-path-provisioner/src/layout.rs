//! Where a volume's directory lives, seen from the host and from its node, and the checks that
//! keep deletion inside that layout.
//!
//! Every node runs in its own mount namespace and sees its own volumes at one fixed path,
//! `<node-volumes>`; on the host, where this provisioner runs, node N's are in
//! `<nodes-root>/<N>/volumes`. A volume `<pv>` on node N is therefore
//! `<nodes-root>/<N>/volumes/<pv>` here and `<node-volumes>/<pv>` in its hostPath, and its
//! nodeAffinity (`kubernetes.io/hostname In [N]`) is what says which N. The node scripts
//! make the one appear at the other in each node's mount namespace and rely on this layout.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume, VolumeNodeAffinity,
};

/// The label every node carries with its own name; a volume's nodeAffinity selects on it.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Mode of a new volume directory: writable by every uid.
///
/// A CSI driver's volume is chowned to the Pod's fsGroup by the kubelet, but the kubelet
/// never does that for hostPath volumes, and the directory is made for a claim, not a Pod:
/// with Immediate binding no Pod exists yet, and with WaitForFirstConsumer the Pod that was
/// scheduled first need not be the only one to use it. No owner or group chosen here could be
/// right, and a setgid bit would only make new files group root. With 0777, files belong to
/// the writing Pod's uid and runAsGroup; Pods setting runAsGroup equal to fsGroup (both
/// operators do) see the same ownership as on a CSI volume. Only acceptable on a test cluster
/// whose volume directories are closed to other host users ([`ROOT_MODE`] on the directories
/// above them: Pods reach theirs through the kubelet's bind mount).
pub const DIR_MODE: u32 = 0o777;
/// Mode of `<nodes-root>` and of each `<nodes-root>/<N>/volumes` with its parent.
pub const ROOT_MODE: u32 = 0o700;

/// The two roots: on the host, and inside every node.
#[derive(Debug, Clone)]
pub struct Layout {
    nodes_root: PathBuf,
    node_volumes: PathBuf,
}

impl Layout {
    /// Both must be absolute: a relative hostPath means nothing to the kubelet, and a relative
    /// nodes root would depend on where the provisioner was started.
    pub fn new(nodes_root: PathBuf, node_volumes: PathBuf) -> Result<Self> {
        if !nodes_root.is_absolute() {
            bail!(
                "--nodes-root must be an absolute path, not {}",
                nodes_root.display()
            );
        }
        if !node_volumes.is_absolute() {
            bail!(
                "--node-volumes must be an absolute path, not {}",
                node_volumes.display()
            );
        }
        Ok(Self {
            nodes_root,
            node_volumes,
        })
    }

    pub fn nodes_root(&self) -> &Path {
        &self.nodes_root
    }

    pub fn node_volumes(&self) -> &Path {
        &self.node_volumes
    }

    /// `<nodes-root>/<node>/volumes`: node `node`'s volumes as the host sees them.
    pub fn volumes_on_host(&self, node: &str) -> Result<PathBuf> {
        let node = one_component(node).with_context(|| format!("node name {node:?}"))?;
        Ok(self.nodes_root.join(node).join("volumes"))
    }

    /// `<node-volumes>/<pv>`: the hostPath of volume `pv`, as its node sees it.
    pub fn path_on_node(&self, pv: &str) -> PathBuf {
        self.node_volumes.join(pv)
    }

    /// The host directory of a volume made by this provisioner:
    /// `<nodes-root>/<N>/volumes/<pv>`, N from its nodeAffinity. An error says why `volume`
    /// does not fit the layout (no single hostname term, or a hostPath other than
    /// `<node-volumes>/<pv>`), so an edited volume never points deletion anywhere else.
    pub fn dir_on_host(&self, volume: &PersistentVolume) -> Result<PathBuf> {
        let name = volume.metadata.name.as_deref().unwrap_or_default();
        let name = one_component(name).with_context(|| format!("volume name {name:?}"))?;
        let node = node_of(volume).with_context(|| {
            format!("its nodeAffinity is not one term `{HOSTNAME_LABEL} In [<node>]`")
        })?;
        let path = volume
            .spec
            .as_ref()
            .and_then(|s| s.host_path.as_ref())
            .map(|h| Path::new(&h.path))
            .context("it has no hostPath")?;
        if dir_under_root(&self.node_volumes, path) != Some(self.path_on_node(name)) {
            bail!(
                "its hostPath {} is not {}",
                path.display(),
                self.path_on_node(name).display()
            );
        }
        Ok(self.volumes_on_host(node)?.join(name))
    }
}

/// Pins a volume to `node`.
pub fn node_affinity(node: &str) -> VolumeNodeAffinity {
    VolumeNodeAffinity {
        required: Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: HOSTNAME_LABEL.to_string(),
                    operator: "In".to_string(),
                    values: Some(vec![node.to_string()]),
                }]),
                match_fields: None,
            }],
        }),
    }
}

/// The node of a volume pinned by [`node_affinity`]; `None` for any other affinity, even one
/// that allows a single node in some other way, since only ours are known to be in the layout.
pub fn node_of(volume: &PersistentVolume) -> Option<&str> {
    let required = volume
        .spec
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required
        .as_ref()?;
    let [term] = required.node_selector_terms.as_slice() else {
        return None;
    };
    if term.match_fields.as_ref().is_some_and(|f| !f.is_empty()) {
        return None;
    }
    let [requirement] = term.match_expressions.as_deref()? else {
        return None;
    };
    let [node] = requirement.values.as_deref()? else {
        return None;
    };
    (requirement.key == HOSTNAME_LABEL && requirement.operator == "In" && !node.is_empty())
        .then_some(node.as_str())
}

/// `name` when it is a single normal path component (no `/`, not `.` or `..`, not empty), so
/// joining it to a directory names a child of that directory.
fn one_component(name: &str) -> Result<&str> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(c)), None) if c == name => Ok(name),
        _ => bail!("not a single path component"),
    }
}

/// `path` when it is a direct child of `root`, the only directories this provisioner makes;
/// `None` for anything else (`..`, the root itself, deeper paths, other trees), so an edited
/// PersistentVolume cannot make us delete the wrong directory.
pub fn dir_under_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut rest = path.strip_prefix(root).ok()?.components();
    match (rest.next(), rest.next()) {
        (Some(Component::Normal(name)), None) => Some(root.join(name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostPathVolumeSource, PersistentVolumeSpec};
    use kube::api::ObjectMeta;

    const PV: &str = "pvc-0a1b2c3d-aaaa-bbbb-cccc-000000000000";

    fn layout() -> Layout {
        Layout::new(
            "/var/lib/pgop-nodes".into(),
            "/var/lib/pgop-node/volumes".into(),
        )
        .unwrap()
    }

    fn volume(name: &str, path: &str, affinity: Option<VolumeNodeAffinity>) -> PersistentVolume {
        PersistentVolume {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeSpec {
                host_path: Some(HostPathVolumeSource {
                    path: path.into(),
                    type_: Some("Directory".into()),
                }),
                node_affinity: affinity,
                ..PersistentVolumeSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn roots_must_be_absolute() {
        assert!(Layout::new("nodes".into(), "/v".into()).is_err());
        assert!(Layout::new("/nodes".into(), "v".into()).is_err());
    }

    #[test]
    fn reclaimed_directory_is_under_the_node_of_the_affinity_named_after_the_volume() {
        let pv = volume(
            PV,
            &format!("/var/lib/pgop-node/volumes/{PV}"),
            Some(node_affinity("pgop-node-2")),
        );
        assert_eq!(node_of(&pv), Some("pgop-node-2"));
        assert_eq!(
            layout().dir_on_host(&pv).unwrap(),
            Path::new(&format!("/var/lib/pgop-nodes/pgop-node-2/volumes/{PV}"))
        );
    }

    #[test]
    fn volumes_outside_the_layout_are_refused() {
        let ok_path = format!("/var/lib/pgop-node/volumes/{PV}");
        let pinned = Some(node_affinity("pgop-node-1"));
        let mut cases = vec![
            ("no affinity", volume(PV, &ok_path, None)),
            (
                "hostPath of another volume",
                volume(PV, "/var/lib/pgop-node/volumes/pvc-other", pinned.clone()),
            ),
            (
                "hostPath outside node-volumes",
                volume(PV, &format!("/etc/{PV}"), pinned.clone()),
            ),
            (
                "hostPath below the volume",
                volume(PV, &format!("{ok_path}/data"), pinned.clone()),
            ),
            (
                "hostPath climbing out",
                volume(
                    PV,
                    &format!("/var/lib/pgop-node/volumes/../{PV}"),
                    pinned.clone(),
                ),
            ),
            (
                "node name climbing out",
                volume(PV, &ok_path, Some(node_affinity(".."))),
            ),
            (
                "node name with a slash",
                volume(PV, &ok_path, Some(node_affinity("a/b"))),
            ),
            (
                "volume name climbing out",
                volume("..", "/var/lib/pgop-node/volumes/..", pinned.clone()),
            ),
        ];
        let mut two_nodes = node_affinity("pgop-node-1");
        let term = &mut two_nodes.required.as_mut().unwrap().node_selector_terms[0];
        term.match_expressions.as_mut().unwrap()[0].values =
            Some(vec!["pgop-node-1".into(), "pgop-node-2".into()]);
        cases.push(("two nodes", volume(PV, &ok_path, Some(two_nodes))));
        let mut not_in = node_affinity("pgop-node-1");
        let term = &mut not_in.required.as_mut().unwrap().node_selector_terms[0];
        term.match_expressions.as_mut().unwrap()[0].operator = "NotIn".into();
        cases.push(("NotIn", volume(PV, &ok_path, Some(not_in))));
        let mut other_label = node_affinity("pgop-node-1");
        let term = &mut other_label.required.as_mut().unwrap().node_selector_terms[0];
        term.match_expressions.as_mut().unwrap()[0].key = "topology.kubernetes.io/zone".into();
        cases.push(("other label", volume(PV, &ok_path, Some(other_label))));
        let mut two_terms = node_affinity("pgop-node-1");
        let terms = &mut two_terms.required.as_mut().unwrap().node_selector_terms;
        terms.push(terms[0].clone());
        cases.push(("two terms", volume(PV, &ok_path, Some(two_terms))));
        for (case, pv) in cases {
            assert!(layout().dir_on_host(&pv).is_err(), "{case}");
        }
    }

    #[test]
    fn node_names_must_be_one_path_component() {
        assert_eq!(
            layout().volumes_on_host("pgop-node-3").unwrap(),
            Path::new("/var/lib/pgop-nodes/pgop-node-3/volumes")
        );
        for bad in ["", ".", "..", "a/b", "/abs"] {
            assert!(layout().volumes_on_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn root_guard_accepts_only_direct_children_of_the_root() {
        let root = Path::new("/var/lib/pgop-node/volumes");
        let ok = Path::new("/var/lib/pgop-node/volumes/pvc-0a1b2c3d");
        assert_eq!(dir_under_root(root, ok).as_deref(), Some(ok));
        for bad in [
            "/var/lib/pgop-node/volumes",
            "/var/lib/pgop-node/volumes/..",
            "/var/lib/pgop-node/volumes/../../../etc",
            "/var/lib/pgop-node/volumes/a/b",
            "/var/lib/pgop-node/volumes-evil/a",
            "/etc",
            "volumes/a",
        ] {
            assert_eq!(dir_under_root(root, Path::new(bad)), None, "{bad}");
        }
    }
}
