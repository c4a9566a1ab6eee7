//! The names a definition is served under and its `NamesAccepted` and `Established`
//! conditions, as upstream's naming and establishing controllers decide them: a name another
//! definition of the same group already holds is refused (`PluralConflict`, ...); a definition
//! whose names are accepted is established, and stays so.

use jiff::Timestamp;
use serde_json::{Value, json};
use skiff_core::kinds::customresourcedefinition as crd;
use std::collections::BTreeSet;

/// Names other definitions of a group hold (their accepted names).
#[derive(Default)]
struct Taken {
    resources: BTreeSet<String>,
    kinds: BTreeSet<String>,
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn list(v: &Value, field: &str) -> Vec<String> {
    v.get(field).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

fn taken(group: &str, name: &str, all: &[Value]) -> Taken {
    let mut t = Taken::default();
    // A built-in resource of the group is taken too: its objects live where the definition's
    // would (`/registry/GROUP/PLURAL/`), so sharing a name would share (and delete) them.
    for k in skiff_core::kinds::all().iter().filter(|k| k.info().group == group) {
        let i = k.info();
        t.resources.extend([i.plural, i.singular].map(String::from));
        t.kinds.extend([i.kind.to_string(), format!("{}List", i.kind)]);
    }
    for other in all {
        if other.pointer("/spec/group").and_then(Value::as_str) != Some(group) || skiff_core::meta::name(other) == name
        {
            continue;
        }
        let accepted = other.pointer("/status/acceptedNames").cloned().unwrap_or_default();
        t.resources.extend([text(&accepted, "plural"), text(&accepted, "singular")].map(String::from));
        t.resources.extend(list(&accepted, "shortNames"));
        t.kinds.extend([text(&accepted, "kind"), text(&accepted, "listKind")].map(String::from));
    }
    t.resources.remove("");
    t.kinds.remove("");
    t
}

/// Upstream's `equalToAcceptedOrFresh`.
fn conflict(requested: &str, accepted: &str, used: &BTreeSet<String>) -> Option<String> {
    (requested != accepted && used.contains(requested)).then(|| format!("{requested:?} is already in use"))
}

/// `crd`'s status as the naming and establishing controllers leave it, given every definition
/// (`all`, which may include `crd` itself).
pub fn desired_status(crd_obj: &Value, all: &[Value], now: Timestamp) -> Value {
    let group = crd_obj.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let taken = taken(group, skiff_core::meta::name(crd_obj), all);
    let requested = crd_obj.pointer("/spec/names").cloned().unwrap_or_default();
    let accepted = crd_obj.pointer("/status/acceptedNames").cloned().unwrap_or_else(|| json!({}));
    let mut names = accepted.clone();
    let mut failure: Option<(&str, String)> = None;
    for (field, reason, used) in
        [("plural", "PluralConflict", &taken.resources), ("singular", "SingularConflict", &taken.resources)]
    {
        match conflict(text(&requested, field), text(&accepted, field), used) {
            Some(why) => failure = Some((reason, why)),
            None => names[field] = json!(text(&requested, field)),
        }
    }
    let (wanted, had) = (list(&requested, "shortNames"), list(&accepted, "shortNames"));
    if wanted != had {
        let errs: Vec<String> =
            wanted.iter().filter(|s| !had.contains(s)).filter_map(|s| conflict(s, "", &taken.resources)).collect();
        match errs.as_slice() {
            [] => names["shortNames"] = json!(wanted),
            [one] => failure = Some(("ShortNamesConflict", one.clone())),
            many => failure = Some(("ShortNamesConflict", format!("[{}]", many.join(", ")))),
        }
    }
    for (field, reason) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        match conflict(text(&requested, field), text(&accepted, field), &taken.kinds) {
            Some(why) => failure = Some((reason, why)),
            None => names[field] = json!(text(&requested, field)),
        }
    }
    if let Some(categories) = requested.get("categories") {
        names["categories"] = categories.clone();
    } else if let Some(n) = names.as_object_mut() {
        n.remove("categories");
    }
    // No short names is no field, as upstream's `omitempty` writes it.
    if names.get("shortNames").and_then(Value::as_array).is_some_and(Vec::is_empty)
        && let Some(n) = names.as_object_mut()
    {
        n.remove("shortNames");
    }

    let mut out = crd_obj.clone();
    out["status"]["acceptedNames"] = names;
    let established = crd::condition_is_true(crd_obj, "Established");
    match failure {
        None => {
            crd::set_condition(&mut out, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now);
            if !established {
                crd::set_condition(
                    &mut out,
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                    now,
                );
            }
        }
        Some((reason, message)) => {
            crd::set_condition(&mut out, "NamesAccepted", "False", reason, &message, now);
            if crd::condition(crd_obj, "Established").is_none() {
                crd::set_condition(&mut out, "Established", "False", "NotAccepted", "not all names are accepted", now);
            }
        }
    }
    out["status"].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, plural: &str, kind: &str, short: &[&str]) -> Value {
        json!({"metadata": {"name": name}, "spec": {"group": "example.com",
            "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind,
                "listKind": format!("{kind}List"), "shortNames": short, "categories": ["all"]}}})
    }

    fn accept(mut crd_obj: Value, all: &[Value]) -> Value {
        crd_obj["status"] = desired_status(&crd_obj, all, Timestamp::now());
        crd_obj
    }

    fn condition(crd_obj: &Value, type_: &str) -> (String, String, String) {
        let c = crd::condition(crd_obj, type_).cloned().unwrap_or_default();
        (text(&c, "status").into(), text(&c, "reason").into(), text(&c, "message").into())
    }

    #[test]
    fn fresh_names_are_accepted_and_the_definition_established() {
        let w = accept(def("widgets.example.com", "widgets", "Widget", &["wd"]), &[]);
        assert_eq!(
            w["status"]["acceptedNames"],
            json!({"plural": "widgets", "singular": "widget", "shortNames": ["wd"], "kind": "Widget",
                "listKind": "WidgetList", "categories": ["all"]})
        );
        assert_eq!(condition(&w, "NamesAccepted"), ("True".into(), "NoConflicts".into(), "no conflicts found".into()));
        assert_eq!(
            condition(&w, "Established"),
            ("True".into(), "InitialNamesAccepted".into(), "the initial names have been accepted".into())
        );
        let types: Vec<&str> =
            w["status"]["conditions"].as_array().expect("conditions").iter().map(|c| text(c, "type")).collect();
        assert_eq!(types, ["NamesAccepted", "Established"]);
        // Nothing changes the second time.
        assert_eq!(desired_status(&w, std::slice::from_ref(&w), Timestamp::now()), w["status"]);
    }

    #[test]
    fn names_held_by_another_definition_of_the_group_are_refused() {
        let w = accept(def("widgets.example.com", "widgets", "Widget", &["wd"]), &[]);
        let all = [w.clone()];
        let clash = accept(def("widgets2.example.com", "widgets", "Gadget", &[]), &all);
        // Plural and singular are both taken: the last conflict found is the reason (upstream's).
        assert_eq!(
            condition(&clash, "NamesAccepted"),
            ("False".into(), "SingularConflict".into(), "\"widget\" is already in use".into())
        );
        assert_eq!(
            condition(&clash, "Established"),
            ("False".into(), "NotAccepted".into(), "not all names are accepted".into())
        );
        assert_eq!(clash["status"]["acceptedNames"]["kind"], "Gadget", "the names that are free are taken");
        let kind_clash = accept(def("gadgets.example.com", "gadgets", "Widget", &["wd", "g"]), &all);
        // Short name, kind and list kind all taken: the list kind is checked last.
        assert_eq!(condition(&kind_clash, "NamesAccepted").1, "ListKindConflict");
        let short_clash = accept(def("gadgets.example.com", "gadgets", "Gadget", &["wd", "g"]), &all);
        assert_eq!(
            condition(&short_clash, "NamesAccepted"),
            ("False".into(), "ShortNamesConflict".into(), "\"wd\" is already in use".into())
        );
        let other_group = {
            let mut d = def("widgets.acme.io", "widgets", "Widget", &["wd"]);
            d["spec"]["group"] = json!("acme.io");
            accept(d, &all)
        };
        assert_eq!(condition(&other_group, "NamesAccepted").0, "True");
        // A built-in resource's name in its own group is never given to a definition.
        let mut leases = def("leases.coordination.k8s.io", "leases", "Lease", &[]);
        leases["spec"]["group"] = json!("coordination.k8s.io");
        let leases = accept(leases, &[]);
        assert_eq!(condition(&leases, "NamesAccepted").1, "ListKindConflict");
        assert_eq!(condition(&leases, "Established").0, "False");
    }
}
