//! How each list in the served kinds merges: the `patchStrategy`/`patchMergeKey` tags strategic
//! merge patch reads, and the `listType`/`listMapKeys` markers server-side apply reads.
//! Paths are field names from the object root with list indices left out, e.g.
//! `spec.containers.ports`.

/// Strategic-merge-patch behaviour of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeStrategy {
    /// Replaced whole by the patch.
    Replace,
    /// Objects merged element-wise by this key.
    MergeByKey(&'static str),
    /// A list of scalars merged as a set union.
    MergePrimitives,
}

/// Server-side-apply behaviour of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map(&'static [&'static str]),
}

/// Fold the container-like lists onto one name so a table row serves all of them, and a
/// workload's pod template (`spec.template.spec`, a CronJob's `spec.jobTemplate.spec.template.spec`)
/// onto the pod's own `spec`.
fn canonical(path: &str) -> String {
    let path = match path
        .strip_prefix("spec.jobTemplate.spec.template.spec.")
        .or_else(|| path.strip_prefix("spec.template.spec."))
    {
        Some(rest) => format!("spec.{rest}"),
        None => path.to_string(),
    };
    path.replace("spec.initContainers", "spec.containers")
        .replace("spec.ephemeralContainers", "spec.containers")
        .replace("status.initContainerStatuses", "status.containerStatuses")
        .replace("status.ephemeralContainerStatuses", "status.containerStatuses")
}

/// (path, SMP strategy, SSA list type) for every list that is not atomic-and-replaced.
const LISTS: &[(&str, MergeStrategy, ListType)] = &[
    // Webhook configurations and ValidatingAdmissionPolicies.
    ("webhooks", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("webhooks.matchConditions", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("spec.matchConditions", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("spec.variables", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("spec.validationActions", MergeStrategy::Replace, ListType::Set),
    ("metadata.finalizers", MergeStrategy::MergePrimitives, ListType::Set),
    ("metadata.ownerReferences", MergeStrategy::MergeByKey("uid"), ListType::Map(&["uid"])),
    ("spec.containers", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    (
        "spec.containers.ports",
        MergeStrategy::MergeByKey("containerPort"),
        ListType::Map(&["containerPort", "protocol"]),
    ),
    ("spec.containers.env", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("spec.containers.volumeMounts", MergeStrategy::MergeByKey("mountPath"), ListType::Map(&["mountPath"])),
    ("spec.containers.volumeDevices", MergeStrategy::MergeByKey("devicePath"), ListType::Map(&["devicePath"])),
    ("spec.containers.resizePolicy", MergeStrategy::Replace, ListType::Atomic),
    ("spec.volumes", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("spec.imagePullSecrets", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("spec.hostAliases", MergeStrategy::MergeByKey("ip"), ListType::Map(&["ip"])),
    (
        "spec.topologySpreadConstraints",
        MergeStrategy::MergeByKey("topologyKey"),
        ListType::Map(&["topologyKey", "whenUnsatisfiable"]),
    ),
    ("spec.resourceClaims", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("spec.schedulingGates", MergeStrategy::MergeByKey("name"), ListType::Map(&["name"])),
    ("spec.podCIDRs", MergeStrategy::MergePrimitives, ListType::Set),
    ("status.conditions", MergeStrategy::MergeByKey("type"), ListType::Map(&["type"])),
    ("status.podIPs", MergeStrategy::MergeByKey("ip"), ListType::Map(&["ip"])),
    ("status.hostIPs", MergeStrategy::MergeByKey("ip"), ListType::Map(&["ip"])),
    ("status.addresses", MergeStrategy::MergeByKey("type"), ListType::Atomic),
];

pub fn merge_strategy(path: &str) -> MergeStrategy {
    let p = canonical(path);
    LISTS.iter().find(|(lp, _, _)| *lp == p).map(|(_, s, _)| *s).unwrap_or(MergeStrategy::Replace)
}

pub fn list_type(path: &str) -> ListType {
    let p = canonical(path);
    LISTS.iter().find(|(lp, _, _)| *lp == p).map(|(_, _, t)| *t).unwrap_or(ListType::Atomic)
}

/// Maps whose keys are data (labels, annotations, resource lists ...), as opposed to structs.
/// Server-side apply owns their entries one by one; patches merge them key by key either way.
pub fn is_granular_map(path: &str) -> bool {
    let p = canonical(path);
    matches!(
        p.as_str(),
        "metadata.labels"
            | "metadata.annotations"
            | "spec.template.metadata.labels"
            | "spec.template.metadata.annotations"
            | "spec.jobTemplate.metadata.labels"
            | "spec.jobTemplate.metadata.annotations"
            | "spec.jobTemplate.spec.template.metadata.labels"
            | "spec.jobTemplate.spec.template.metadata.annotations"
            | "spec.nodeSelector"
            | "spec.overhead"
            | "spec.containers.resources.limits"
            | "spec.containers.resources.requests"
            | "status.capacity"
            | "status.allocatable"
    )
}

/// A list's server-side-apply type as a kind's [`Shapes`] answer it: the keys are owned, for a
/// CustomResourceDefinition's markers name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListShape {
    /// Replaced and owned whole (upstream's default).
    Atomic,
    /// Scalars merged as a set, each owned on its own (`v:` elements).
    Set,
    /// Objects merged and owned item by item, keyed by these fields (`k:` elements).
    Map(Vec<String>),
}

impl From<ListType> for ListShape {
    fn from(t: ListType) -> Self {
        match t {
            ListType::Atomic => ListShape::Atomic,
            ListType::Set => ListShape::Set,
            ListType::Map(keys) => ListShape::Map(keys.iter().map(|k| k.to_string()).collect()),
        }
    }
}

/// How server-side apply treats an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapShape {
    /// A struct: declared fields, each merged and owned on its own.
    Fields,
    /// Keys are data (labels, resource lists, `additionalProperties`): merged and owned key by
    /// key, and the map itself is a member of the set (`".": {}`).
    Granular,
    /// Replaced and owned whole (`x-kubernetes-map-type: atomic`).
    Atomic,
}

/// The list and map types server-side apply follows in one kind's objects (structured-merge-diff's
/// schema). Paths are field names from the object root, list indices left out
/// (`["spec", "containers", "ports"]`).
pub trait Shapes: Send + Sync {
    /// The type of the list at `path`.
    fn list(&self, path: &[&str]) -> ListShape;
    /// The type of the object at `path`.
    fn map(&self, path: &[&str]) -> MapShape;
}

/// The built-in kinds' table ([`list_type`], [`is_granular_map`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltIn;

/// The built-in kinds' shapes.
pub static BUILT_IN: BuiltIn = BuiltIn;

impl Shapes for BuiltIn {
    fn list(&self, path: &[&str]) -> ListShape {
        list_type(&path.join(".")).into()
    }

    fn map(&self, path: &[&str]) -> MapShape {
        if is_granular_map(&path.join(".")) { MapShape::Granular } else { MapShape::Fields }
    }
}

pub fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_containers_share_container_rules() {
        assert_eq!(merge_strategy("spec.initContainers"), MergeStrategy::MergeByKey("name"));
        assert_eq!(list_type("spec.initContainers.ports"), ListType::Map(&["containerPort", "protocol"]));
        assert_eq!(merge_strategy("spec.tolerations"), MergeStrategy::Replace);
        assert_eq!(list_type("spec.containers.args"), ListType::Atomic);
    }

    #[test]
    fn workload_templates_share_the_pod_rules() {
        assert_eq!(list_type("spec.template.spec.containers"), ListType::Map(&["name"]));
        assert_eq!(
            merge_strategy("spec.jobTemplate.spec.template.spec.containers.env"),
            MergeStrategy::MergeByKey("name")
        );
        assert!(is_granular_map("spec.template.spec.nodeSelector"));
        assert!(is_granular_map("spec.template.metadata.labels"));
        assert_eq!(list_type("spec.template.metadata.finalizers"), ListType::Atomic);
    }
}
