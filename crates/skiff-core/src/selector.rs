//! Label and field selectors, parsed from their query-string forms.

use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SelectorError {
    #[error("unable to parse requirement: {0}")]
    Label(String),
    #[error("invalid selector: '{0}'; can't understand '{1}'")]
    Field(String, String),
    /// A field selector on a field the kind cannot select on (a 400, in the API server's words).
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    NotExists,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
}

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<(String, Op)>);

/// Split at commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn check_key(key: &str, whole: &str) -> Result<String, SelectorError> {
    let errs = crate::names::qualified_name(key);
    if key.is_empty() || !errs.is_empty() {
        return Err(SelectorError::Label(format!("{whole}: key: Invalid value: {key:?}: {}", errs.join("; "))));
    }
    Ok(key.to_string())
}

fn check_value(v: &str, whole: &str) -> Result<String, SelectorError> {
    let errs = crate::names::label_value(v);
    if !errs.is_empty() {
        return Err(SelectorError::Label(format!("{whole}: values[0]: Invalid value: {v:?}: {}", errs.join("; "))));
    }
    Ok(v.to_string())
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(SelectorError::Label(format!("found '', expected: identifier in {s:?}")));
            }
            if let Some(k) = p.strip_prefix('!') {
                reqs.push((check_key(k.trim(), p)?, Op::NotExists));
            } else if let Some((k, v)) = p.split_once("!=") {
                reqs.push((check_key(k.trim(), p)?, Op::NotEquals(check_value(v.trim(), p)?)));
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                reqs.push((check_key(k.trim(), p)?, Op::Equals(check_value(v.trim(), p)?)));
            } else if let Some((k, rest)) = split_set_op(p, " notin ") {
                reqs.push((check_key(k, p)?, Op::NotIn(parse_set(rest, p)?)));
            } else if let Some((k, rest)) = split_set_op(p, " in ") {
                reqs.push((check_key(k, p)?, Op::In(parse_set(rest, p)?)));
            } else {
                reqs.push((check_key(p, p)?, Op::Exists));
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, op)| match op {
            Op::Exists => labels.contains_key(k),
            Op::NotExists => !labels.contains_key(k),
            Op::Equals(want) => labels.get(k) == Some(want),
            Op::NotEquals(want) => labels.get(k) != Some(want),
            Op::In(vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Op::NotIn(vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }

    /// A `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`), as upstream's
    /// `LabelSelectorAsSelector` reads it. `None` (no selector) selects nothing upstream; callers
    /// decide. Run [`validate_api`] first: what it rejects is skipped here.
    pub fn from_api(selector: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        for (k, v) in selector.get("matchLabels").and_then(Value::as_object).into_iter().flatten() {
            reqs.push((k.clone(), Op::Equals(v.as_str().unwrap_or_default().to_string())));
        }
        for e in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
            let key = e["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> =
                e["values"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
            let op = match e["operator"].as_str() {
                Some("In") => Op::In(values),
                Some("NotIn") => Op::NotIn(values),
                Some("Exists") => Op::Exists,
                Some("DoesNotExist") => Op::NotExists,
                _ => continue,
            };
            reqs.push((key, op));
        }
        LabelSelector(reqs)
    }
}

/// `selector.String()`: requirements sorted by key (`app=web,tier in (a,b)`); empty when the
/// selector is (Table columns print `<none>` then, as `metav1.FormatLabelSelector` does).
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut reqs: Vec<&(String, Op)> = self.0.iter().collect();
        reqs.sort_by(|a, b| a.0.cmp(&b.0));
        let parts: Vec<String> = reqs
            .iter()
            .map(|(k, op)| {
                let set = |vs: &[String]| {
                    let mut vs = vs.to_vec();
                    vs.sort();
                    vs.join(",")
                };
                match op {
                    Op::Exists => k.clone(),
                    Op::NotExists => format!("!{k}"),
                    Op::Equals(v) => format!("{k}={v}"),
                    Op::NotEquals(v) => format!("{k}!={v}"),
                    Op::In(vs) => format!("{k} in ({})", set(vs)),
                    Op::NotIn(vs) => format!("{k} notin ({})", set(vs)),
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Upstream's `ValidateLabelSelector` of a `metav1.LabelSelector` object at `path`, as with
/// `AllowInvalidLabelValueInSelector`: the values of `matchExpressions` are not checked.
pub fn validate_api(selector: &Value, path: &Path) -> ErrorList {
    validate_api_with(selector, path, true)
}

/// Upstream's `ValidateLabelSelector`; `allow_invalid_values` is its
/// `AllowInvalidLabelValueInSelector` (set to keep the invalid values of a stored object).
pub fn validate_api_with(selector: &Value, path: &Path, allow_invalid_values: bool) -> ErrorList {
    let mut errs = Vec::new();
    let labels: BTreeMap<String, String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    errs.extend(crate::names::validate_labels(Some(&labels), &path.child("matchLabels")));
    for (i, e) in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let ep = path.child("matchExpressions").index(i);
        let values = e["values"].as_array().map_or(0, Vec::len);
        match e["operator"].as_str().unwrap_or_default() {
            "In" | "NotIn" if values == 0 => errs.push(FieldError::required(
                &ep.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if values > 0 => errs.push(FieldError::forbidden(
                &ep.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(&ep.child("operator"), other, "not a valid selector operator")),
        }
        let key = e["key"].as_str().unwrap_or_default();
        errs.extend(crate::names::invalid_all(&ep.child("key"), key, crate::names::qualified_name(key)));
        if !allow_invalid_values {
            for (vi, v) in e["values"].as_array().into_iter().flatten().enumerate() {
                let v = v.as_str().unwrap_or_default();
                errs.extend(crate::names::invalid_all(&ep.child("values").index(vi), v, crate::names::label_value(v)));
            }
        }
    }
    errs
}

fn split_set_op<'a>(p: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let (k, rest) = p.split_once(op)?;
    Some((k.trim(), rest.trim()))
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, SelectorError> {
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError::Label(format!("{whole}: expected a parenthesised set of values")))?;
    inner.split(',').map(|v| check_value(v.trim(), whole)).collect()
}

/// A parsed `fieldSelector`: `field=value` / `field==value` / `field!=value` terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(terms));
        }
        for part in s.split(',') {
            let p = part.trim();
            let (k, eq, v) = if let Some((k, v)) = p.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                (k, true, v)
            } else {
                return Err(SelectorError::Field(s.to_string(), p.to_string()));
            };
            terms.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    /// The value a term requires for `field`, when there is an equality term on it.
    pub fn required(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(k, eq, _)| k == field && *eq).map(|(_, _, v)| v.as_str())
    }

    /// Match using `get` to read a field; `get` returns `None` for a field the kind cannot select on.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> Result<bool, SelectorError> {
        for (k, eq, v) in &self.0 {
            let actual = get(k).ok_or_else(|| SelectorError::UnsupportedField(k.clone()))?;
            if (actual == *v) != *eq {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selector_forms() {
        let l = labels(&[("app", "web"), ("tier", "fe")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app", true),
            ("!app", false),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("app=web,tier in (fe, be)", true),
            ("missing!=x", true),
        ] {
            assert_eq!(LabelSelector::parse(sel).expect(sel).matches(&l), want, "{sel}");
        }
        assert!(LabelSelector::parse("bad key=x").is_err());
        assert_eq!(
            LabelSelector::parse("tier in (fe, be),app=web,!x").expect("parse").to_string(),
            "app=web,tier in (be,fe),!x"
        );
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn api_selectors_match_print_and_validate() {
        let api = serde_json::json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}, {"key": "x", "operator": "DoesNotExist"}]});
        let sel = LabelSelector::from_api(&api);
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "1")])));
        assert_eq!(sel.to_string(), "app=web,tier in (be,fe),!x");
        assert_eq!(LabelSelector::default().to_string(), "");
        assert!(validate_api(&api, &Path::new("spec").child("selector")).is_empty());
        let bad = serde_json::json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Has"}]});
        let errs: Vec<String> =
            validate_api(&bad, &Path::new("spec").child("selector")).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "spec.selector.matchExpressions[2].operator: Invalid value: \"Has\": not a valid selector operator",
            ]
        );
    }

    #[test]
    fn expression_values_are_checked_unless_allowed() {
        let api =
            serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "-bad-"]}]});
        let path = Path::new("spec").child("podSelector");
        assert!(validate_api(&api, &path).is_empty());
        assert!(validate_api_with(&api, &path, true).is_empty());
        let errs: Vec<String> = validate_api_with(&api, &path, false).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.podSelector.matchExpressions[0].values[1]: Invalid value: \"-bad-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ]
        );
    }

    #[test]
    fn field_selector_forms() {
        let f = FieldSelector::parse("metadata.name=web,status.phase!=Failed").expect("parse");
        let get = |k: &str| match k {
            "metadata.name" => Some("web".to_string()),
            "status.phase" => Some("Running".to_string()),
            _ => None,
        };
        assert_eq!(f.matches(get), Ok(true));
        assert_eq!(f.required("metadata.name"), Some("web"));
        let bad = FieldSelector::parse("spec.foo=x").expect("parse");
        assert_eq!(bad.matches(get), Err(SelectorError::UnsupportedField("spec.foo".to_string())));
        assert_eq!(bad.matches(get).expect_err("unsupported").to_string(), "field label not supported: spec.foo");
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
