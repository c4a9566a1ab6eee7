//! The kinds served right now: the built-in table (`skiff_core::kinds::all`) and the custom
//! kinds of the CustomResourceDefinitions that are established. Routing, discovery, namespace
//! deletion and OpenAPI read one [`Snapshot`]; the CRD controller publishes a new one after
//! each change, so a request never waits for it.

use serde_json::Value;
use skiff_core::kinds::{self, Kind, customresourcedefinition as crd};
use std::cmp::Ordering;
use std::sync::{Arc, RwLock};

/// What is served at one moment.
#[derive(Default)]
pub struct Snapshot {
    /// Custom kinds, groups by name and versions in upstream's priority order.
    custom: Vec<&'static dyn Kind>,
    /// The definitions served (established), as stored.
    crds: Vec<Value>,
}

impl Snapshot {
    /// Every served kind: the built-in ones, then the custom ones.
    pub fn all(&self) -> impl Iterator<Item = &'static dyn Kind> + '_ {
        kinds::all().iter().copied().chain(self.custom.iter().copied())
    }

    /// The kind served as `resource` in `group`/`version`.
    pub fn by_resource(&self, group: &str, version: &str, resource: &str) -> Option<&'static dyn Kind> {
        kinds::by_resource(group, version, resource).or_else(|| {
            self.custom.iter().copied().find(|k| {
                let i = k.info();
                i.group == group && i.version == version && i.plural == resource
            })
        })
    }

    /// The API groups served with their versions (preferred first): built-in, then custom.
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        kinds::groups_of(self.all())
    }

    /// The kinds served in `group`/`version`.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'static dyn Kind> + 'a {
        self.all().filter(move |k| k.info().group == group && k.info().version == version)
    }

    /// The established definitions.
    pub fn crds(&self) -> &[Value] {
        &self.crds
    }
}

/// The current snapshot, swapped whole.
#[derive(Default)]
pub struct Catalog {
    current: RwLock<Arc<Snapshot>>,
}

impl Catalog {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Serve the custom kinds of `crds` (every definition known; the established ones count).
    pub fn set_crds(&self, crds: &[Value]) {
        let mut served: Vec<Value> =
            crds.iter().filter(|c| crd::condition_is_true(c, "Established")).cloned().collect();
        served.sort_by(|a, b| {
            group_of(a).cmp(group_of(b)).then_with(|| skiff_core::meta::name(a).cmp(skiff_core::meta::name(b)))
        });
        let mut custom: Vec<&'static dyn Kind> =
            served.iter().flat_map(kinds::custom::kinds_of).filter(|k| !shadows_built_in(*k)).collect();
        // Within a group: versions by upstream's priority (`v1` before `v1beta1`), kinds stable.
        custom.sort_by(|a, b| {
            let (a, b) = (a.info(), b.info());
            a.group.cmp(b.group).then_with(|| compare_versions(a.version, b.version))
        });
        let next = Arc::new(Snapshot { custom, crds: served });
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }
}

/// Whether a custom kind names a built-in resource (its objects would be the built-in's):
/// never served, whatever a definition says.
pub fn shadows_built_in(kind: &dyn Kind) -> bool {
    let i = kind.info();
    kinds::all().iter().any(|b| b.info().group == i.group && b.info().plural == i.plural)
}

fn group_of(crd: &Value) -> &str {
    crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default()
}

/// A version's place in upstream's order (`version.CompareKubeAwareVersionStrings`): GA before
/// beta before alpha, higher numbers first; versions not of that form last, alphabetically.
fn kube_aware(v: &str) -> Option<(u8, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let major: u64 = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if rest.is_empty() {
        return Some((2, major, 0));
    }
    let (stage, minor) = if let Some(m) = rest.strip_prefix("beta") {
        (1, m)
    } else if let Some(m) = rest.strip_prefix("alpha") {
        (0, m)
    } else {
        return None;
    };
    Some((stage, major, minor.parse().ok()?))
}

/// Upstream's order of versions: the preferred first.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (kube_aware(a), kube_aware(b)) {
        // Higher stage, then higher major, then higher minor come first.
        (Some((sa, ma, na)), Some((sb, mb, nb))) => sb.cmp(&sa).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_in_upstreams_order() {
        let mut v = vec!["v1alpha1", "foo", "v2", "v1beta1", "v1", "v10", "v11alpha2", "v1beta2", "v12alpha1", "bar"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["v10", "v2", "v1", "v1beta2", "v1beta1", "v12alpha1", "v11alpha2", "v1alpha1", "bar", "foo"]);
    }

    fn crd(group: &str, plural: &str, kind: &str, versions: &[&str], established: bool) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"name": v, "served": true, "storage": i == 0, "schema": {"openAPIV3Schema": {"type": "object"}}}))
            .collect();
        let status = if established { "True" } else { "False" };
        json!({"metadata": {"name": format!("{plural}.{group}")},
            "spec": {"group": group, "scope": "Namespaced", "versions": versions,
                "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind, "listKind": format!("{kind}List")}},
            "status": {"conditions": [{"type": "Established", "status": status}]}})
    }

    #[test]
    fn established_definitions_are_served_after_the_built_in_kinds() {
        let catalog = Catalog::default();
        assert!(catalog.snapshot().by_resource("example.com", "v1", "widgets").is_none());
        catalog.set_crds(&[
            crd("example.com", "widgets", "Widget", &["v1beta1", "v1"], true),
            crd("example.com", "gadgets", "Gadget", &["v1"], true),
            crd("acme.io", "things", "Thing", &["v1"], false),
        ]);
        let s = catalog.snapshot();
        assert_eq!(s.by_resource("example.com", "v1beta1", "widgets").map(|k| k.info().kind), Some("Widget"));
        assert!(s.by_resource("acme.io", "v1", "things").is_none(), "not established");
        assert!(s.by_resource("", "v1", "pods").is_some());
        let groups = s.groups();
        assert_eq!(groups.last(), Some(&("example.com", vec!["v1", "v1beta1"])));
        let v1: Vec<&str> = s.in_group_version("example.com", "v1").map(|k| k.info().plural).collect();
        assert_eq!(v1.len(), 2);
        assert_eq!(s.crds().len(), 2);
    }
}
