//! Jobs (`batch/v1`): pods run to completion, with their selector generated from the Job's uid.

use super::template::{self, WIDE_COLUMNS, non_negative};
use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::selector::{self, LabelSelector};
use crate::{meta, time};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct Jobs;

static INFO: ResourceInfo = ResourceInfo {
    group: "batch",
    version: "v1",
    plural: "jobs",
    singular: "job",
    kind: "Job",
    namespaced: true,
    short_names: &[],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[("status", "Job", &["get", "patch", "update"])],
};

static COLUMNS: [Column; 8] = [
    NAME_COLUMN,
    Column::new("Status", 0, "Status of the job."),
    Column::new(
        "Completions",
        0,
        "The desired number of successfully finished pods the job should be run with. More info: https://kubernetes.io/docs/concepts/workloads/controllers/jobs-run-to-completion/",
    ),
    Column::new("Duration", 0, "Time required to complete the job."),
    AGE_COLUMN,
    WIDE_COLUMNS[0],
    WIDE_COLUMNS[1],
    WIDE_COLUMNS[2],
];

/// The labels a Job's pods carry, and its selector (upstream's `batch/v1` label names).
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";

const COMPLETION_MODES: &[&str] = &["NonIndexed", "Indexed"];
const RESTART_POLICIES: &[&str] = &["OnFailure", "Never"];
const REPLACEMENT_POLICIES: &[&str] = &["TerminatingOrFailed", "Failed"];

/// batch/v1 `SetDefaults_Job` of a job spec at `pointer` (`/spec`).
fn default_spec(obj: &mut Value) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    let unset = |spec: &Value, f: &str| spec.get(f).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec["completions"] = json!(1);
    }
    if unset(spec, "parallelism") {
        spec["parallelism"] = json!(1);
    }
    if unset(spec, "backoffLimit") {
        let per_index = !unset(spec, "backoffLimitPerIndex");
        spec["backoffLimit"] = json!(if per_index { i64::from(i32::MAX) } else { 6 });
    }
    if unset(spec, "completionMode") {
        spec["completionMode"] = json!("NonIndexed");
    }
    if unset(spec, "suspend") {
        spec["suspend"] = json!(false);
    }
    if unset(spec, "manualSelector") {
        spec["manualSelector"] = json!(false);
    }
    if unset(spec, "podReplacementPolicy") {
        let policy = if unset(spec, "podFailurePolicy") { "TerminatingOrFailed" } else { "Failed" };
        spec["podReplacementPolicy"] = json!(policy);
    }
}

/// Upstream's `generateSelector`: unless the selector is manual, the pods are labelled with the
/// Job's name and uid and the selector picks the uid.
fn generate_selector(obj: &mut Value) {
    if obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let (name, uid) = (meta::name(obj).to_string(), meta::uid(obj).to_string());
    let template = &mut obj["spec"]["template"];
    if !template.get("metadata").is_some_and(Value::is_object) {
        template["metadata"] = json!({});
    }
    if !template["metadata"].get("labels").is_some_and(Value::is_object) {
        template["metadata"]["labels"] = json!({});
    }
    let labels = &mut template["metadata"]["labels"];
    for (label, value) in [
        (LEGACY_CONTROLLER_UID_LABEL, &uid),
        (CONTROLLER_UID_LABEL, &uid),
        (LEGACY_JOB_NAME_LABEL, &name),
        (JOB_NAME_LABEL, &name),
    ] {
        if labels.get(label).is_none() {
            labels[label] = json!(value);
        }
    }
    let spec = &mut obj["spec"];
    if !spec.get("selector").is_some_and(Value::is_object) {
        spec["selector"] = json!({});
    }
    if !spec["selector"].get("matchLabels").is_some_and(Value::is_object) {
        spec["selector"]["matchLabels"] = json!({});
    }
    if spec["selector"]["matchLabels"].get(CONTROLLER_UID_LABEL).is_none() {
        spec["selector"]["matchLabels"][CONTROLLER_UID_LABEL] = json!(uid);
    }
}

/// A Job's spec rules (`ValidateJobSpec`), also used for a CronJob's job template (`path`
/// `spec.jobTemplate.spec`, where the selector is not generated yet).
pub(crate) fn validate_spec(spec: &Value, path: &Path, selector_required: bool) -> ErrorList {
    let mut errs = Vec::new();
    for f in ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"] {
        non_negative(spec, &format!("/{f}"), &path.child(f), &mut errs);
    }
    let mode = spec.get("completionMode").and_then(Value::as_str);
    match mode {
        Some(m) if !COMPLETION_MODES.contains(&m) => {
            errs.push(FieldError::not_supported(&path.child("completionMode"), m, COMPLETION_MODES));
        }
        Some("Indexed") if spec.get("completions").is_none_or(Value::is_null) => {
            errs.push(FieldError::required(&path.child("completions"), "when completion mode is Indexed"));
        }
        _ => {}
    }
    if let Some(p) = spec.get("podReplacementPolicy").and_then(Value::as_str)
        && !REPLACEMENT_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(&path.child("podReplacementPolicy"), p, REPLACEMENT_POLICIES));
    }
    let selector = match spec.get("selector").filter(|s| !s.is_null()) {
        Some(sel) => {
            let invalid = selector::validate_api(sel, &path.child("selector"));
            let ok = invalid.is_empty();
            errs.extend(invalid);
            if ok { LabelSelector::from_api(sel) } else { LabelSelector::default() }
        }
        None if selector_required => {
            errs.push(FieldError::required(&path.child("selector"), ""));
            LabelSelector::default()
        }
        None => LabelSelector::default(),
    };
    let tpath = path.child("template");
    let tmpl = spec.get("template").unwrap_or(&Value::Null);
    let labels = template::labels(tmpl);
    if !selector.is_empty() && !selector.matches(&labels) {
        errs.push(FieldError::invalid_go(
            &tpath.child("metadata").child("labels"),
            BadValue::string_map(&labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(template::validate(tmpl, &tpath));
    let restart = tmpl.pointer("/spec/restartPolicy").and_then(Value::as_str).unwrap_or("");
    if !RESTART_POLICIES.contains(&restart) {
        errs.push(FieldError::not_supported(&tpath.child("spec").child("restartPolicy"), restart, RESTART_POLICIES));
    }
    errs
}

/// The STATUS column (`printJob`).
fn status(obj: &Value) -> &'static str {
    let has = |t: &str| {
        obj.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if meta::is_deleting(obj) {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn int(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

impl Kind for Jobs {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Job>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Job>(raw)
    }
    fn default(&self, obj: &mut Value) {
        default_spec(obj);
        template::default(obj, "/spec/template");
        // The template's labels are the Job's when it has none (upstream does this on every
        // decode, so a created Job shows its generated labels).
        let labels = template::labels(obj.pointer("/spec/template").unwrap_or(&Value::Null));
        if !labels.is_empty() && meta::labels(obj).is_empty() {
            meta::metadata_mut(obj).insert("labels".into(), json!(labels));
        }
    }
    fn prepare_create(&self, obj: &mut Value) {
        generate_selector(obj);
        self.default(obj);
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    /// Upstream's `ValidateJob`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        errs.extend(validate_spec(obj.get("spec").unwrap_or(&Value::Null), &Path::new("spec"), true));
        errs
    }
    /// `ValidateJobUpdate`: the selector, completions (unless Indexed with parallelism) and the
    /// template (unless the Job is suspended) are fixed.
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        template::validate_selector_unchanged(old, new, &mut errs);
        let spec = Path::new("spec");
        let (oc, nc) = (old.pointer("/spec/completions"), new.pointer("/spec/completions"));
        let elastic =
            new.pointer("/spec/completionMode") == Some(&json!("Indexed")) && new.pointer("/spec/parallelism") == nc;
        if oc != nc && !elastic {
            let value = nc.cloned().unwrap_or(Value::Null);
            errs.push(FieldError::invalid(&spec.child("completions"), value, "field is immutable"));
        }
        let suspended = old.pointer("/spec/suspend") == Some(&json!(true));
        if !suspended && old.pointer("/spec/template") != new.pointer("/spec/template") {
            errs.push(FieldError::invalid_go(
                &spec.child("template"),
                BadValue::Go("core.PodTemplateSpec{...}".into()),
                "field is immutable",
            ));
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let succeeded = int(obj, "/status/succeeded").unwrap_or(0);
        let completions = match int(obj, "/spec/completions") {
            Some(c) => format!("{succeeded}/{c}"),
            None => match int(obj, "/spec/parallelism").unwrap_or(0) {
                p if p > 1 => format!("{succeeded}/1 of {p}"),
                _ => format!("{succeeded}/1"),
            },
        };
        let start = time::parse(obj.pointer("/status/startTime").and_then(Value::as_str));
        let end = time::parse(obj.pointer("/status/completionTime").and_then(Value::as_str));
        let duration = match (start, end) {
            (None, _) => String::new(),
            (Some(s), None) => time::since(Some(s), now),
            (Some(s), Some(e)) => time::since(Some(s), e),
        };
        let [containers, images, selector] = template::wide_cells(obj, "/spec/template", "/spec/selector");
        vec![
            json!(meta::name(obj)),
            json!(status(obj)),
            json!(completions),
            json!(duration),
            json!(meta::age(obj, now)),
            containers,
            images,
            selector,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(spec: Value) -> Value {
        let mut obj = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"}, "spec": spec});
        Jobs.default(&mut obj);
        Jobs.prepare_create(&mut obj);
        obj
    }

    fn pi() -> Value {
        json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}})
    }

    #[test]
    fn defaults_and_the_generated_selector() {
        let job = created(pi());
        let spec = &job["spec"];
        assert_eq!(
            (spec["completions"].clone(), spec["parallelism"].clone(), spec["backoffLimit"].clone()),
            (json!(1), json!(1), json!(6))
        );
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(spec["selector"], json!({"matchLabels": {CONTROLLER_UID_LABEL: "u-1"}}));
        let labels = &spec["template"]["metadata"]["labels"];
        assert_eq!((labels[JOB_NAME_LABEL].clone(), labels["controller-uid"].clone()), (json!("pi"), json!("u-1")));
        assert_eq!(job["metadata"]["labels"][JOB_NAME_LABEL], "pi");
        assert!(Jobs.validate(&job).is_empty(), "{:?}", Jobs.validate(&job));
        let mut parallel = pi();
        parallel["parallelism"] = json!(3);
        let p = created(parallel);
        assert!(p["spec"].get("completions").is_none());
        assert_eq!(Jobs.cells(&p, Timestamp::now())[2], json!("0/1 of 3"));
    }

    #[test]
    fn validation_as_upstream() {
        let mut spec = pi();
        spec["template"]["spec"]["restartPolicy"] = json!("Always");
        spec["backoffLimit"] = json!(-1);
        spec["completionMode"] = json!("Indexed");
        spec["parallelism"] = json!(2);
        let errs: Vec<String> = Jobs.validate(&created(spec)).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
                "spec.completions: Required value: when completion mode is Indexed",
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ]
        );
        let job = created(pi());
        let mut changed = job.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
        changed["spec"]["completions"] = json!(2);
        let errs: Vec<String> = Jobs.validate_update(&job, &changed).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.completions: Invalid value: 2: field is immutable",
                "spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable",
            ]
        );
    }

    #[test]
    fn status_and_duration_columns() {
        let mut job = created(pi());
        job["status"] = json!({"succeeded": 1, "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:00:07Z",
            "conditions": [{"type": "Complete", "status": "True"}]});
        let cells = Jobs.cells(&job, "2026-01-01T01:00:00Z".parse().expect("time"));
        assert_eq!(cells[1..4], [json!("Complete"), json!("1/1"), json!("7s")]);
    }
}
