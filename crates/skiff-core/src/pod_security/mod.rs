//! Pod Security admission as upstream's `k8s.io/pod-security-admission` decides it, pure: the
//! levels and versions (`level`), a namespace's policy from its labels (`policy`), the baseline
//! and restricted checks (`checks`), and what admission says of a pod, a workload's pod
//! template or a namespace's new labels (`admission`). The API server reads the namespace and
//! its pods and carries the decisions out.

pub mod admission;
pub mod checks;
pub mod level;
pub mod policy;

pub use checks::{Evaluation, PodView, Violation, evaluate};
pub use level::{Level, LevelVersion, Version};
pub use policy::Policy;
