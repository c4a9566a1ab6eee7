//! The CronJob controller: at each time the schedule names (in the CronJob's time zone), a Job
//! from the template, named `NAME-<minutes since the epoch>` so a time is never run twice; the
//! concurrency policy (Allow, Forbid, Replace), `startingDeadlineSeconds`, `suspend`, the history
//! limits, and `status.active`/`lastScheduleTime`/`lastSuccessfulTime`. [`plan`] is pure; [`run`]
//! watches CronJobs and Jobs, and wakes at the next scheduled time.

use crate::informers::Informers;
use crate::owner::{controller_reference, is_controlled_by, object_reference};
use crate::work::{self, Key};
use jiff::{Timestamp, Zoned};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use skiff_client::events::{Recorder, Type};
use std::sync::Arc;
use std::time::Duration;

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
const RESYNC: Duration = Duration::from_secs(30);

/// What one round does to one CronJob.
#[derive(Debug, Default)]
pub struct Plan {
    /// The Job to create for a scheduled time.
    pub create: Option<Job>,
    /// Jobs to delete: active ones replaced, finished ones past the history limits.
    pub delete: Vec<String>,
    pub status: CronJobStatus,
    /// When the next scheduled time comes.
    pub requeue: Option<Duration>,
    pub events: Vec<(Type, &'static str, String)>,
}

fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().filter(|c| c.status == "True").find_map(|c| match c.type_.as_str() {
        "Complete" => Some("Complete"),
        "Failed" => Some("Failed"),
        _ => None,
    })
}

fn job_reference(job: &Job) -> ObjectReference {
    object_reference(job)
}

/// The time zone a CronJob's schedule is in: its own, or this machine's (as the controller
/// manager's local zone is upstream's default).
pub fn zone(cj: &CronJob) -> Option<jiff::tz::TimeZone> {
    match cj.spec.time_zone.as_deref() {
        Some(name) => jiff::tz::TimeZone::get(name).ok(),
        None => Some(jiff::tz::TimeZone::system()),
    }
}

/// Pure: the round for `cj`, given the Jobs it controls, at `now` in `tz`.
pub fn plan(cj: &CronJob, jobs: &[Arc<Job>], now: Timestamp, tz: &jiff::tz::TimeZone) -> Plan {
    let spec = &cj.spec;
    let mut out = Plan::default();
    let mut status = cj.status.clone().unwrap_or_default();
    let name = cj.metadata.name.clone().unwrap_or_default();
    let active: Vec<&Arc<Job>> =
        jobs.iter().filter(|j| finished(j).is_none() && j.metadata.deletion_timestamp.is_none()).collect();

    // History: finished Jobs past their limits go, oldest first.
    for (kind, limit) in [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let mut done: Vec<&Arc<Job>> =
            jobs.iter().filter(|j| finished(j) == Some(kind) && j.metadata.deletion_timestamp.is_none()).collect();
        done.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let excess = done.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
        for j in &done[..excess] {
            let job = j.metadata.name.clone().unwrap_or_default();
            out.events.push((Type::Normal, "SuccessfulDelete", format!("Deleted job {job}")));
            out.delete.push(job);
        }
    }
    let last_success = jobs
        .iter()
        .filter(|j| finished(j) == Some("Complete"))
        .filter_map(|j| j.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
        .max();
    if let Some(t) = last_success
        && status.last_successful_time.as_ref().is_none_or(|old| old.0 < t)
    {
        status.last_successful_time = Some(Time(t));
    }

    let cron = match skiff_core::kinds::parse_schedule(&spec.schedule) {
        Ok(c) => c,
        Err(e) => {
            out.events.push((
                Type::Warning,
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            ));
            status.active = Some(active.iter().map(|j| job_reference(j)).collect()).filter(|a: &Vec<_>| !a.is_empty());
            out.status = status;
            return out;
        }
    };
    let zoned_now = now.to_zoned(tz.clone());
    let next = cron.find_next_occurrence(&zoned_now, false).ok();
    out.requeue = next.map(|n| {
        let secs = n.timestamp().as_second() - now.as_second();
        Duration::from_secs(u64::try_from(secs).unwrap_or(1).max(1))
    });

    // The latest scheduled time since the last one run (or since the CronJob was made).
    let since = status
        .last_schedule_time
        .as_ref()
        .or(cj.metadata.creation_timestamp.as_ref())
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let latest = cron.find_previous_occurrence(&zoned_now, true).ok().filter(|t: &Zoned| t.timestamp() > since);
    let mut active_refs: Vec<ObjectReference> = active.iter().map(|j| job_reference(j)).collect();
    if let (Some(scheduled), false) = (latest, spec.suspend == Some(true)) {
        let at = scheduled.timestamp();
        let late = spec.starting_deadline_seconds.is_some_and(|d| at.as_second() + d < now.as_second());
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        let job_name = format!("{name}-{}", at.as_second() / 60);
        let exists = jobs.iter().any(|j| j.metadata.name.as_deref() == Some(job_name.as_str()));
        if late {
            out.events.push((
                Type::Warning,
                "MissSchedule",
                format!("Missed scheduled time to start a job: {}", skiff_core::time::rfc3339(at)),
            ));
            status.last_schedule_time = Some(Time(at));
        } else if exists {
            status.last_schedule_time = Some(Time(at));
        } else if policy == "Forbid" && !active.is_empty() {
            out.events.push((
                Type::Normal,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            ));
        } else {
            if policy == "Replace" {
                for j in &active {
                    let job = j.metadata.name.clone().unwrap_or_default();
                    out.events.push((Type::Normal, "SuccessfulDelete", format!("Deleted job {job}")));
                    out.delete.push(job);
                }
                active_refs.clear();
            }
            let template = spec.job_template.clone();
            let tmeta = template.metadata.unwrap_or_default();
            let mut annotations = tmeta.annotations.unwrap_or_default();
            annotations.insert(SCHEDULED_TIMESTAMP.into(), scheduled.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string());
            let job = Job {
                metadata: ObjectMeta {
                    name: Some(job_name.clone()),
                    namespace: cj.metadata.namespace.clone(),
                    labels: tmeta.labels,
                    annotations: Some(annotations),
                    owner_references: Some(vec![controller_reference(cj)]),
                    ..Default::default()
                },
                spec: Some(template.spec.unwrap_or_default()),
                status: None,
            };
            out.events.push((Type::Normal, "SuccessfulCreate", format!("Created job {job_name}")));
            active_refs.push(ObjectReference {
                api_version: Some("batch/v1".into()),
                kind: Some("Job".into()),
                name: Some(job_name),
                namespace: cj.metadata.namespace.clone(),
                ..Default::default()
            });
            out.create = Some(job);
            status.last_schedule_time = Some(Time(at));
        }
    }
    status.active = Some(active_refs).filter(|a| !a.is_empty());
    out.status = status;
    out
}

struct Ctx {
    client: kube::Client,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
    recorder: Recorder,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(cj) = ctx.cronjobs.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(tz) = zone(&cj) else {
        let message = format!("invalid timeZone: {:?}", cj.spec.time_zone.as_deref().unwrap_or_default());
        ctx.recorder.object(object_reference(cj.as_ref()), Type::Warning, "UnknownTimeZone", &message).await;
        return Ok(Some(RESYNC));
    };
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let jobs: Vec<Arc<Job>> = work::in_namespace(&ctx.jobs, &key.namespace)
        .into_iter()
        .filter(|j| is_controlled_by(&j.metadata, &uid))
        .collect();
    let plan = plan(&cj, &jobs, Timestamp::now(), &tz);
    let api = Api::<Job>::namespaced(ctx.client.clone(), &key.namespace);
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(job) = &plan.create {
        match api.create(&PostParams::default(), job).await {
            Ok(_) => {}
            // Made already (a round the cache had not caught up with): the same time, not again.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    for (ty, reason, message) in &plan.events {
        ctx.recorder.object(object_reference(cj.as_ref()), *ty, reason, message).await;
    }
    if cj.status.as_ref() != Some(&plan.status) {
        let patch = json!({"status": plan.status});
        let cjapi = Api::<CronJob>::namespaced(ctx.client.clone(), &key.namespace);
        match cjapi.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => drop(other?),
        }
    }
    Ok(plan.requeue)
}

/// Run the CronJob controller until the process stops.
pub async fn run(informers: &Informers) {
    let (queue, cronjobs, jobs) = work::watch_owned::<CronJob, Job>(informers, RESYNC).await;
    let client = informers.client_as(crate::identity::CRONJOB);
    let ctx = Ctx { recorder: Recorder::new(client.clone(), "cronjob-controller", ""), client, cronjobs, jobs };
    work::drive(queue, "CronJob", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn cronjob(schedule: &str, policy: &str, status: serde_json::Value) -> CronJob {
        serde_json::from_value(json!({"metadata": {"name": "hello", "namespace": "default", "uid": "cj-1",
            "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"schedule": schedule, "concurrencyPolicy": policy, "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 1,
                "jobTemplate": {"metadata": {"labels": {"app": "hello"}}, "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                    "containers": [{"name": "c", "image": "busybox"}]}}}}},
            "status": status}))
        .expect("cronjob")
    }

    fn job(name: &str, done: Option<&str>, created: &str) -> Arc<Job> {
        let conditions = done.map(|t| json!([{"type": t, "status": "True"}])).unwrap_or(json!([]));
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "creationTimestamp": created},
                "status": {"conditions": conditions, "completionTime": done.map(|_| created)}}))
            .expect("job"),
        )
    }

    #[test]
    fn runs_the_latest_missed_time_once_and_wakes_for_the_next() {
        let utc = jiff::tz::TimeZone::UTC;
        let cj = cronjob("*/5 * * * *", "Allow", json!({}));
        let p = plan(&cj, &[], ts("2026-01-01T00:12:30Z"), &utc);
        let job = p.create.expect("a job for 00:10");
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(format!("hello-{}", ts("2026-01-01T00:10:00Z").as_second() / 60).as_str())
        );
        assert_eq!(job.metadata.annotations.expect("annotations")[SCHEDULED_TIMESTAMP], "2026-01-01T00:10:00+00:00");
        assert_eq!(job.metadata.labels.expect("labels")["app"], "hello");
        assert_eq!(p.status.last_schedule_time.map(|t| t.0), Some(ts("2026-01-01T00:10:00Z")));
        assert_eq!(p.requeue, Some(Duration::from_secs(150)));
        // Already run: nothing until 00:15.
        let ran = cronjob("*/5 * * * *", "Allow", json!({"lastScheduleTime": "2026-01-01T00:10:00Z"}));
        assert!(plan(&ran, &[], ts("2026-01-01T00:12:30Z"), &utc).create.is_none());
    }

    #[test]
    fn concurrency_policies_and_history() {
        let utc = jiff::tz::TimeZone::UTC;
        let running = job("hello-1", None, "2026-01-01T00:05:00Z");
        let forbid = cronjob("*/5 * * * *", "Forbid", json!({"lastScheduleTime": "2026-01-01T00:05:00Z"}));
        let p = plan(&forbid, std::slice::from_ref(&running), ts("2026-01-01T00:10:01Z"), &utc);
        assert!(p.create.is_none());
        let replace = cronjob("*/5 * * * *", "Replace", json!({"lastScheduleTime": "2026-01-01T00:05:00Z"}));
        let p = plan(&replace, std::slice::from_ref(&running), ts("2026-01-01T00:10:01Z"), &utc);
        assert!(p.create.is_some());
        assert_eq!(p.delete, ["hello-1"]);
        let history = [
            job("a", Some("Complete"), "2026-01-01T00:01:00Z"),
            job("b", Some("Complete"), "2026-01-01T00:02:00Z"),
            job("c", Some("Failed"), "2026-01-01T00:03:00Z"),
        ];
        let allow = cronjob("0 0 1 1 *", "Allow", json!({"lastScheduleTime": "2026-01-01T00:00:00Z"}));
        let p = plan(&allow, &history, ts("2026-01-01T00:10:00Z"), &utc);
        assert_eq!(p.delete, ["a"], "one successful job kept, one failed kept");
        assert_eq!(p.status.last_successful_time.map(|t| t.0), Some(ts("2026-01-01T00:02:00Z")));
    }

    #[test]
    fn time_zones_shift_the_schedule() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").expect("tzdata");
        let cj = cronjob("0 9 * * *", "Allow", json!({"lastScheduleTime": "2026-01-01T00:00:00Z"}));
        // 09:00 in Berlin is 08:00 UTC in January.
        let p = plan(&cj, &[], ts("2026-01-01T08:00:30Z"), &berlin);
        assert_eq!(p.status.last_schedule_time.map(|t| t.0), Some(ts("2026-01-01T08:00:00Z")));
        let suspended: CronJob = {
            let mut c = cj.clone();
            c.spec.suspend = Some(true);
            c
        };
        assert!(plan(&suspended, &[], ts("2026-01-01T08:00:30Z"), &berlin).create.is_none());
    }
}
