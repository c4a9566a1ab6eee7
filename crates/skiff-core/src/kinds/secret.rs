//! core/v1 Secrets: `stringData` folded into `data`, per-type required keys, `immutable`.

use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::{meta, names};
use base64::Engine;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Map, Value, json};

pub struct Secrets;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "secrets",
    singular: "secret",
    kind: "Secret",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

static COLUMNS: [Column; 4] = [
    NAME_COLUMN,
    Column::new("Type", 0, "The type of the secret"),
    Column::new("Data", 0, "The number of entries in the data"),
    AGE_COLUMN,
];

pub const OPAQUE: &str = "Opaque";
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKER_CFG: &str = "kubernetes.io/dockercfg";
/// The most a secret's data may hold, as in Kubernetes.
const MAX_TOTAL_BYTES: usize = 1024 * 1024;

/// Every key a secret of `type` must have (each alternative group: at least one key of it).
fn required_keys(ty: &str) -> &'static [&'static str] {
    match ty {
        DOCKER_CFG => &[".dockercfg"],
        DOCKER_CONFIG_JSON => &[".dockerconfigjson"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        _ => &[],
    }
}

/// Moves `stringData` into `data` (base64-encoded; `stringData` wins), as the API server's conversion does.
fn fold_string_data(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let Some(Value::Object(strings)) = o.remove("stringData") else { return };
    let data = o.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    for (k, v) in strings {
        let plain = v.as_str().unwrap_or_default();
        data[k] = json!(base64::engine::general_purpose::STANDARD.encode(plain));
    }
}

fn data(obj: &Value) -> Map<String, Value> {
    obj.get("data").and_then(Value::as_object).cloned().unwrap_or_default()
}

fn decoded(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).unwrap_or_default()
}

fn secret_type(obj: &Value) -> &str {
    obj.get("type").and_then(Value::as_str).unwrap_or("")
}

impl Kind for Secrets {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Secret>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Secret>(raw)
    }
    fn default(&self, obj: &mut Value) {
        fold_string_data(obj);
        if secret_type(obj).is_empty() {
            obj["type"] = json!(OPAQUE);
        }
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let data_path = Path::new("data");
        let data = data(obj);
        let mut total = 0;
        for (k, v) in &data {
            for m in names::config_key(k) {
                errs.push(FieldError::invalid(&data_path.key(k), k.as_str(), m));
            }
            total += decoded(v).len();
        }
        if total > MAX_TOTAL_BYTES {
            errs.push(FieldError::too_long(&data_path, MAX_TOTAL_BYTES));
        }
        let ty = secret_type(obj);
        match ty {
            "kubernetes.io/service-account-token" => {
                let annotations = meta::str_map(obj, "annotations");
                if annotations.get("kubernetes.io/service-account.name").is_none_or(String::is_empty) {
                    let p = Path::new("metadata").child("annotations").key("kubernetes.io/service-account.name");
                    errs.push(FieldError::required(&p, ""));
                }
            }
            "kubernetes.io/basic-auth" if !data.contains_key("username") && !data.contains_key("password") => {
                errs.push(FieldError::required(&data_path.key("username"), ""));
                errs.push(FieldError::required(&data_path.key("password"), ""));
            }
            _ => {}
        }
        for key in required_keys(ty) {
            match data.get(*key) {
                None => errs.push(FieldError::required(&data_path.key(key), "")),
                Some(v) if ty == DOCKER_CFG || ty == DOCKER_CONFIG_JSON => {
                    if let Err(e) = serde_json::from_slice::<Value>(&decoded(v)) {
                        errs.push(FieldError::invalid(
                            &data_path.key(key),
                            "<secret contents redacted>",
                            e.to_string(),
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        errs
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        if secret_type(old) != secret_type(new) {
            errs.push(FieldError::invalid(&Path::new("type"), secret_type(new), "field is immutable"));
        }
        if old.get("immutable").and_then(Value::as_bool) == Some(true) {
            const LOCKED: &str = "field is immutable when `immutable` is set";
            if new.get("immutable").and_then(Value::as_bool) != Some(true) {
                errs.push(FieldError::forbidden(&Path::new("immutable"), LOCKED));
            }
            if data(old) != data(new) {
                errs.push(FieldError::forbidden(&Path::new("data"), LOCKED));
            }
        }
        errs
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).into()),
            "metadata.namespace" => Some(meta::namespace(obj).into()),
            "type" => Some(secret_type(obj).into()),
            _ => None,
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        vec![json!(meta::name(obj)), json!(secret_type(obj)), json!(data(obj).len()), json!(meta::age(obj, now))]
    }
}

/// Registry credentials in a pull secret: `(registry host as written, auth entry)` pairs, from either
/// docker format. Other secret types give none.
pub fn docker_auths(secret: &Value) -> Vec<(String, Value)> {
    let d = data(secret);
    let (key, nested) = match secret_type(secret) {
        DOCKER_CONFIG_JSON => (".dockerconfigjson", true),
        DOCKER_CFG => (".dockercfg", false),
        _ => return vec![],
    };
    let Some(doc) = d.get(key).and_then(|v| serde_json::from_slice::<Value>(&decoded(v)).ok()) else {
        return vec![];
    };
    let entries = if nested { doc.get("auths").cloned().unwrap_or_default() } else { doc };
    entries.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(ty: &str, data: Value) -> Value {
        json!({"metadata": {"name": "s", "namespace": "default"}, "type": ty, "data": data})
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn string_data_folds_into_data_and_type_defaults() {
        let mut obj = json!({"metadata": {"name": "s", "namespace": "default"},
            "data": {"a": b64("old"), "b": b64("keep")}, "stringData": {"a": "new"}});
        Secrets.default(&mut obj);
        assert_eq!(obj["data"], json!({"a": b64("new"), "b": b64("keep")}));
        assert!(obj.get("stringData").is_none());
        assert_eq!(obj["type"], OPAQUE);
        assert!(Secrets.validate(&obj).is_empty());
        assert_eq!(Secrets.cells(&obj, Timestamp::now())[1..3], [json!("Opaque"), json!(2)]);
    }

    #[test]
    fn rejects_bad_keys_and_missing_typed_keys() {
        let errs = Secrets.validate(&secret(OPAQUE, json!({"bad key": b64("x"), "..x": ""})));
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[1].starts_with("data[..x]: Invalid value: \"..x\": must not start with '..'"), "{text:?}");
        assert!(text[0].starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key"), "{text:?}");

        let errs = Secrets.validate(&secret(DOCKER_CONFIG_JSON, json!({})));
        assert_eq!(errs[0].to_string(), "data[.dockerconfigjson]: Required value");
        let errs = Secrets.validate(&secret(DOCKER_CONFIG_JSON, json!({".dockerconfigjson": b64("{")})));
        assert!(
            errs[0].to_string().starts_with("data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\"")
        );
        let errs = Secrets.validate(&secret("kubernetes.io/tls", json!({"tls.crt": ""})));
        assert_eq!(errs[0].to_string(), "data[tls.key]: Required value");
        let errs = Secrets.validate(&secret("kubernetes.io/basic-auth", json!({})));
        assert_eq!(errs.len(), 2);
    }

    #[test]
    fn type_and_immutable_data_cannot_change() {
        let old = secret(OPAQUE, json!({"a": b64("1")}));
        let errs = Secrets.validate_update(&old, &secret("other", json!({"a": b64("1")})));
        assert_eq!(errs[0].to_string(), "type: Invalid value: \"other\": field is immutable");
        let mut locked = old.clone();
        locked["immutable"] = json!(true);
        let mut changed = locked.clone();
        changed["data"]["a"] = json!(b64("2"));
        let errs = Secrets.validate_update(&locked, &changed);
        assert_eq!(errs[0].to_string(), "data: Forbidden: field is immutable when `immutable` is set");
        assert!(Secrets.validate_update(&locked, &locked).is_empty());
    }

    #[test]
    fn docker_auths_from_both_formats() {
        let json_cfg = b64(r#"{"auths":{"127.0.0.1:5000":{"auth":"dTpw"}}}"#);
        let s = secret(DOCKER_CONFIG_JSON, json!({".dockerconfigjson": json_cfg}));
        assert_eq!(docker_auths(&s), vec![("127.0.0.1:5000".to_string(), json!({"auth": "dTpw"}))]);
        let s = secret(DOCKER_CFG, json!({".dockercfg": b64(r#"{"reg":{"auth":"dTpw"}}"#)}));
        assert_eq!(docker_auths(&s), vec![("reg".to_string(), json!({"auth": "dTpw"}))]);
        assert!(docker_auths(&secret(OPAQUE, json!({}))).is_empty());
    }
}
