//! core/v1 Events.

use super::{Column, DecodeError, Kind, ResourceInfo, TypedSchema, roundtrip, schema_of, typed};
use crate::field::{ErrorList, FieldError, Path};
use crate::{meta, time};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct Events;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

static COLUMNS: [Column; 10] = [
    Column::new("Last Seen", 0, "Time when this Event was last seen"),
    Column::new("Type", 0, "Type of this event (Normal, Warning), new types could be added in the future."),
    Column::new(
        "Reason",
        0,
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    Column::new("Object", 0, "The object that this event is about."),
    Column::new("Subobject", 1, "The subobject (e.g. container) this event is about."),
    Column::new("Source", 1, "The component reporting this event."),
    Column::new("Message", 0, "A human-readable description of the status of this operation."),
    Column::new("First Seen", 1, "The first time at which the event was recorded."),
    Column::new("Count", 1, "The number of times this event has occurred."),
    Column::new("Name", 1, "The name of the event."),
];

impl Kind for Events {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Event>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Event>(raw)
    }
    fn prepare_update(&self, _old: &Value, _new: &mut Value) {}
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let ns = meta::namespace(obj);
        let inv_ns = obj.pointer("/involvedObject/namespace").and_then(Value::as_str).unwrap_or("");
        if !inv_ns.is_empty() && inv_ns != ns {
            errs.push(FieldError::invalid(
                &Path::new("involvedObject").child("namespace"),
                inv_ns,
                "does not match event.namespace",
            ));
        }
        errs
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
        Some(match field {
            "metadata.name" => meta::name(obj).into(),
            "metadata.namespace" => meta::namespace(obj).into(),
            "involvedObject.kind" => s("/involvedObject/kind"),
            "involvedObject.namespace" => s("/involvedObject/namespace"),
            "involvedObject.name" => s("/involvedObject/name"),
            "involvedObject.uid" => s("/involvedObject/uid"),
            "involvedObject.apiVersion" => s("/involvedObject/apiVersion"),
            "involvedObject.resourceVersion" => s("/involvedObject/resourceVersion"),
            "involvedObject.fieldPath" => s("/involvedObject/fieldPath"),
            "reason" => s("/reason"),
            "reportingComponent" => s("/reportingComponent"),
            "source" => s("/source/component"),
            "type" => s("/type"),
            _ => return None,
        })
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let ev: Event = typed(obj);
        let first = match &ev.first_timestamp {
            Some(t) => time::since(Some(t.0), now),
            None => time::since(ev.event_time.as_ref().map(|t| t.0), now),
        };
        let mut last = match &ev.last_timestamp {
            Some(t) => time::since(Some(t.0), now),
            None => first.clone(),
        };
        let mut count = ev.count.unwrap_or(0);
        if let Some(series) = &ev.series {
            last = time::since(series.last_observed_time.as_ref().map(|t| t.0), now);
            count = series.count.unwrap_or(0);
        } else if count == 0 {
            count = 1;
        }
        let inv = &ev.involved_object;
        let kind = inv.kind.clone().unwrap_or_default().to_lowercase();
        let target = match inv.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => format!("{kind}/{n}"),
            None => kind,
        };
        let source = match &ev.source {
            Some(s) if s.component.as_deref().is_some_and(|c| !c.is_empty()) => {
                match s.host.as_deref().filter(|h| !h.is_empty()) {
                    Some(h) => format!("{}, {h}", s.component.clone().unwrap_or_default()),
                    None => s.component.clone().unwrap_or_default(),
                }
            }
            _ => {
                let c = ev.reporting_component.clone().unwrap_or_default();
                match ev.reporting_instance.as_deref().filter(|i| !i.is_empty()) {
                    Some(i) => format!("{c}, {i}"),
                    None => c,
                }
            }
        };
        vec![
            json!(last),
            json!(ev.type_.unwrap_or_default()),
            json!(ev.reason.unwrap_or_default()),
            json!(target),
            json!(inv.field_path.clone().unwrap_or_default()),
            json!(source),
            json!(ev.message.unwrap_or_default().trim()),
            json!(first),
            json!(count),
            json!(meta::name(obj)),
        ]
    }
}
