//! The composition scenarios: both operators as separate OS processes, each with only its own
//! ServiceAccount's rights, coordinating through a real kube-apiserver and nothing else.
//!
//! This control plane has no node, so these tests play the kubelet: they mark the Pods the
//! real StatefulSet controller creates as Running and Ready by patching their status. The
//! StatefulSet controller then reports the StatefulSet ready, exactly as with a node.

mod composition {
    mod backup_ref;
    mod bad_input;
    mod deletion;
    mod dependency_cycle;
    mod drift;
    mod hostile_cases;
    mod hostile_input;
    mod observability;
    mod rbac;
    mod restarts;
    mod seed;
    mod steady_state;
}
