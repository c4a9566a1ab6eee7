//! A diff of two objects in the shape go-cmp prints (`cmp.Diff`), which upstream appends to some
//! validation errors (a pod update that changes a fixed field). Removed lines start with `- `,
//! added ones with `+ `; runs of equal fields or elements are elided as `... // N identical
//! fields`. Field names are Go's (the JSON name with its first letter upper-cased).
//! go-cmp itself promises no stable text, so this is its shape, not its bytes.

use crate::field::go_quote;
use serde_json::{Map, Value};

/// The diff of `old` and `new`, both of Go type `type_name` (e.g. `core.PodSpec`); empty when equal.
pub fn diff(type_name: &str, old: &Value, new: &Value) -> String {
    if old == new {
        return String::new();
    }
    let mut out = Out::default();
    out.line(' ', 0, &format!("{type_name}{{"));
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => out.fields(1, o, n),
        _ => out.leaf(1, "", Some(old), Some(new)),
    }
    out.line(' ', 0, "}");
    out.lines.join("\n")
}

#[derive(Default)]
struct Out {
    lines: Vec<String>,
}

impl Out {
    fn line(&mut self, mark: char, depth: usize, text: &str) {
        let prefix = match mark {
            '-' => "- ",
            '+' => "+ ",
            _ => "  ",
        };
        self.lines.push(format!("{prefix}{}{text}", "\t".repeat(depth)));
    }

    fn elided(&mut self, depth: usize, n: usize, what: &str) {
        if n > 0 {
            let plural = if n == 1 { "" } else { "s" };
            self.line(' ', depth, &format!("... // {n} identical {what}{plural}"));
        }
    }

    /// The fields of two structs: changed ones shown, equal runs elided.
    fn fields(&mut self, depth: usize, old: &Map<String, Value>, new: &Map<String, Value>) {
        let mut keys: Vec<&String> = old.keys().collect();
        keys.extend(new.keys().filter(|k| !old.contains_key(*k)));
        let changed: Vec<&String> = keys.iter().copied().filter(|k| old.get(*k) != new.get(*k)).collect();
        let width = changed.iter().map(|k| go_name(k).len() + 1).max().unwrap_or(0);
        let mut same = 0;
        for k in keys {
            let (o, n) = (old.get(k), new.get(k));
            if o == n {
                same += 1;
                continue;
            }
            self.elided(depth, same, "field");
            same = 0;
            let label = format!("{:width$} ", format!("{}:", go_name(k)));
            self.value(depth, &label, go_type(k), o, n);
        }
        self.elided(depth, same, "field");
    }

    /// One changed value: nested structs and lists are opened, anything else is a -/+ pair.
    fn value(&mut self, depth: usize, label: &str, type_name: &str, old: Option<&Value>, new: Option<&Value>) {
        match (old, new) {
            (Some(Value::Object(o)), Some(Value::Object(n))) => {
                self.line(' ', depth, &format!("{label}{type_name}{{"));
                self.fields(depth + 1, o, n);
                self.line(' ', depth, "},");
            }
            (Some(Value::Array(o)), Some(Value::Array(n))) => {
                self.line(' ', depth, &format!("{label}{type_name}{{"));
                self.elements(depth + 1, o, n);
                self.line(' ', depth, "},");
            }
            _ => self.leaf(depth, label, old, new),
        }
    }

    fn elements(&mut self, depth: usize, old: &[Value], new: &[Value]) {
        let mut same = 0;
        for i in 0..old.len().max(new.len()) {
            let (o, n) = (old.get(i), new.get(i));
            if o == n {
                same += 1;
                continue;
            }
            self.elided(depth, same, "element");
            same = 0;
            match (o, n) {
                (Some(Value::Object(o)), Some(Value::Object(n))) => {
                    self.line(' ', depth, "{");
                    self.fields(depth + 1, o, n);
                    self.line(' ', depth, "},");
                }
                _ => {
                    if let Some(o) = o {
                        self.line('-', depth, &format!("{},", inline(o)));
                    }
                    if let Some(n) = n {
                        self.line('+', depth, &format!("{},", inline(n)));
                    }
                }
            }
        }
        self.elided(depth, same, "element");
    }

    fn leaf(&mut self, depth: usize, label: &str, old: Option<&Value>, new: Option<&Value>) {
        // A field missing on one side is Go's zero value of the other side's type.
        let zero = |other: Option<&Value>| match other {
            Some(Value::String(_)) => "\"\"".to_string(),
            Some(Value::Number(_)) => "0".to_string(),
            Some(Value::Bool(_)) => "false".to_string(),
            _ => "nil".to_string(),
        };
        let o = old.map(inline).unwrap_or_else(|| zero(new));
        let n = new.map(inline).unwrap_or_else(|| zero(old));
        self.line('-', depth, &format!("{label}{o},"));
        self.line('+', depth, &format!("{label}{n},"));
    }
}

/// A value on one line, as go-cmp prints small values: `{Name: "x", Port: 80}`.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::String(s) => go_quote(s),
        Value::Object(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{}: {}", go_name(k), inline(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(a) => format!("{{{}}}", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// The Go field name of a JSON field.
fn go_name(json: &str) -> String {
    match json {
        "apiVersion" => "APIVersion".into(),
        "uid" => "UID".into(),
        _ => {
            let mut c = json.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        }
    }
}

/// The Go type go-cmp names when it opens a field of the pod spec.
fn go_type(json: &str) -> &'static str {
    match json {
        "containers" | "initContainers" => "[]core.Container",
        "ephemeralContainers" => "[]core.EphemeralContainer",
        "ports" => "[]core.ContainerPort",
        "env" => "[]core.EnvVar",
        "envFrom" => "[]core.EnvFromSource",
        "volumeMounts" => "[]core.VolumeMount",
        "volumes" => "[]core.Volume",
        "tolerations" => "[]core.Toleration",
        "command" | "args" => "[]string",
        "resources" => "core.ResourceRequirements",
        "securityContext" => "&core.SecurityContext",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_diff() {
        assert_eq!(diff("core.PodSpec", &json!({"a": 1}), &json!({"a": 1})), "");
    }

    #[test]
    fn renamed_container_shows_its_name_only() {
        let old = json!({"containers": [{"name": "spring-container", "image": "spring-server", "imagePullPolicy": "Always"}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"});
        let mut new = old.clone();
        new["containers"][0]["name"] = json!("spring-container:latest");
        let want = [
            "  core.PodSpec{",
            "  \tContainers: []core.Container{",
            "  \t\t{",
            "- \t\t\tName: \"spring-container\",",
            "+ \t\t\tName: \"spring-container:latest\",",
            "  \t\t\t... // 2 identical fields",
            "  \t\t},",
            "  \t},",
            "  \t... // 2 identical fields",
            "  }",
        ]
        .join("\n");
        assert_eq!(diff("core.PodSpec", &old, &new), want);
    }

    #[test]
    fn added_fields_and_elements() {
        let old = json!({"env": [{"name": "A", "value": "1"}]});
        let new = json!({"env": [{"name": "A", "value": "1"}, {"name": "B"}], "hostname": "h"});
        let d = diff("core.PodSpec", &old, &new);
        assert!(d.contains("  \t\t... // 1 identical element\n+ \t\t{Name: \"B\"},"), "{d}");
        assert!(d.contains("- \tHostname: \"\",\n+ \tHostname: \"h\","), "{d}");
    }
}
