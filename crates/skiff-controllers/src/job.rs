//! The Job controller: runs a Job's pods to completion. `completions` successes (one per index
//! for `Indexed` Jobs), `parallelism` at a time, new pods after failures held back by the pod
//! back-off (10 s doubling, at most 6 min), and an end: Complete, or Failed with
//! `BackoffLimitExceeded` or `DeadlineExceeded`, active pods stopped. `suspend` stops the active
//! pods; `ttlSecondsAfterFinished` deletes a finished Job. [`plan`] is pure; [`run`] watches Jobs
//! and pods and carries plans out.

use crate::informers::Informers;
use crate::owner::{controller_reference, is_controlled_by, object_reference};
use crate::replicaset::ready_since;
use crate::work::{self, Key};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use skiff_client::events::{Recorder, Type};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
const RESYNC: Duration = Duration::from_secs(30);
const BACKOFF_BASE: i64 = 10;
const BACKOFF_MAX: i64 = 360;

/// What one round does to one Job.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Pods to create: for an Indexed Job, their indexes; otherwise `None` per pod.
    pub create: Vec<Option<i32>>,
    /// Active pods to delete (the Job ended, was suspended, or has too many).
    pub delete: Vec<String>,
    pub status: JobStatus,
    /// Delete the Job itself (its ttlSecondsAfterFinished passed).
    pub expire: bool,
    pub requeue: Option<Duration>,
    pub events: Vec<(Type, &'static str, String)>,
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn index_of(pod: &Pod) -> Option<i32> {
    pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?.parse().ok()
}

fn condition(ty: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: ty.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn has(status: &JobStatus, ty: &str) -> bool {
    status.conditions.iter().flatten().any(|c| c.type_ == ty && c.status == "True")
}

/// `0-2,4` for the set {0, 1, 2, 4}.
pub fn compress(indexes: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    for &i in indexes {
        run = match run {
            Some((a, b)) if i == b + 1 => Some((a, i)),
            Some((a, b)) => {
                out.push(if a == b { a.to_string() } else { format!("{a}-{b}") });
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some((a, b)) = run {
        out.push(if a == b { a.to_string() } else { format!("{a}-{b}") });
    }
    out.join(",")
}

fn parse_indexes(s: Option<&str>) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in s.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    set.extend(a..=b);
                }
            }
            None => set.extend(part.parse::<i32>().ok()),
        }
    }
    set
}

/// Pure: the round for `job`, given its pods, at `now`.
pub fn plan(job: &Job, pods: &[Arc<Pod>], now: Timestamp) -> Plan {
    let spec = job.spec.clone().unwrap_or_default();
    let mut status = job.status.clone().unwrap_or_default();
    let mut out = Plan::default();
    let finished = has(&status, "Complete") || has(&status, "Failed");
    let active: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !matches!(phase(p), "Succeeded" | "Failed"))
        .collect();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    // Finished pods are counted once and for all: the counts never go down when pods go.
    let succeeded_pods: Vec<&Arc<Pod>> = pods.iter().filter(|p| phase(p) == "Succeeded").collect();
    let failed_now = i32::try_from(pods.iter().filter(|p| phase(p) == "Failed").count()).unwrap_or(i32::MAX);
    let mut completed = parse_indexes(status.completed_indexes.as_deref());
    completed.extend(succeeded_pods.iter().filter_map(|p| index_of(p)));
    let succeeded = if indexed {
        i32::try_from(completed.len()).unwrap_or(i32::MAX)
    } else {
        status.succeeded.unwrap_or(0).max(i32::try_from(succeeded_pods.len()).unwrap_or(i32::MAX))
    };
    let failed = status.failed.unwrap_or(0).max(failed_now);
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    status.succeeded = Some(succeeded).filter(|n| *n > 0).or(status.succeeded);
    status.failed = Some(failed).filter(|n| *n > 0).or(status.failed);
    status.ready = Some(count(active.iter().filter(|p| ready_since(p).is_some()).count()));
    if indexed {
        status.completed_indexes = Some(compress(&completed));
    }

    if finished {
        status.active = Some(count(active.len()));
        out.delete = active.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect();
        let done = status
            .conditions
            .iter()
            .flatten()
            .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
        if let (Some(ttl), Some(at)) =
            (spec.ttl_seconds_after_finished, done.and_then(|c| c.last_transition_time.as_ref()))
        {
            let due = at.0.as_second() + i64::from(ttl);
            if due <= now.as_second() {
                out.expire = true;
            } else {
                out.requeue = Some(Duration::from_secs(u64::try_from(due - now.as_second()).unwrap_or(1)));
            }
        }
        out.status = status;
        return out;
    }

    if spec.suspend == Some(true) {
        out.delete = active.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect();
        status.active = Some(0);
        if !has(&status, "Suspended") {
            let mut conditions = status.conditions.take().unwrap_or_default();
            conditions.retain(|c| c.type_ != "Suspended");
            conditions.push(condition("Suspended", "JobSuspended", "Job suspended", now));
            status.conditions = Some(conditions);
            out.events.push((Type::Normal, "Suspended", "Job suspended".into()));
        }
        out.status = status;
        return out;
    }
    if has(&status, "Suspended") {
        let mut conditions = status.conditions.take().unwrap_or_default();
        conditions.retain(|c| c.type_ != "Suspended");
        status.conditions = Some(conditions);
        out.events.push((Type::Normal, "Resumed", "Job resumed".into()));
    }
    let start = status.start_time.get_or_insert(Time(now)).clone();

    // The end: done, out of retries, or out of time.
    let completions = spec.completions;
    let restarts: i32 = if spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure") {
        active
            .iter()
            .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
            .map(|c| c.restart_count)
            .sum()
    } else {
        0
    };
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let done = match completions {
        Some(c) => succeeded >= c,
        // A work queue: done when one pod succeeded and none is left running.
        None => succeeded > 0 && active.is_empty(),
    };
    let end = if done {
        Some(("Complete", "", "", Type::Normal, "Completed", "Job completed"))
    } else if failed + restarts > backoff_limit {
        let m = "Job has reached the specified backoff limit";
        Some(("Failed", "BackoffLimitExceeded", m, Type::Warning, "BackoffLimitExceeded", m))
    } else if spec.active_deadline_seconds.is_some_and(|d| start.0.as_second() + d <= now.as_second()) {
        let m = "Job was active longer than specified deadline";
        Some(("Failed", "DeadlineExceeded", m, Type::Warning, "DeadlineExceeded", m))
    } else {
        None
    };
    if let Some((ty, reason, message, event_type, event_reason, event_message)) = end {
        let mut conditions = status.conditions.take().unwrap_or_default();
        if ty == "Complete" {
            // Kubernetes 1.31+ says the success criteria were met first.
            conditions.push(condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
            conditions.push(condition(
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
            status.completion_time = Some(Time(now));
        } else {
            conditions.push(condition("FailureTarget", reason, message, now));
            conditions.push(condition("Failed", reason, message, now));
        }
        status.conditions = Some(conditions);
        status.active = Some(0);
        out.delete = active.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect();
        out.events.push((event_type, event_reason, event_message.into()));
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            out.requeue = Some(Duration::from_secs(u64::try_from(ttl).unwrap_or(0).max(1)));
        }
        out.status = status;
        return out;
    }

    // Pods to run now: up to parallelism, no more than the completions left.
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let wanted = match completions {
        Some(c) => parallelism.min((c - succeeded).max(0)),
        None if succeeded > 0 => 0,
        None => parallelism,
    };
    let running = count(active.len());
    if running > wanted {
        let mut extra: Vec<&&Arc<Pod>> = active.iter().collect();
        extra.sort_by_key(|p| {
            (
                ready_since(p).is_some(),
                std::cmp::Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second())),
            )
        });
        out.delete = extra[..usize::try_from(running - wanted).unwrap_or(0)]
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
    } else if running < wanted {
        // After failures, new pods wait: 10 s, doubling, at most 6 min since the last failure.
        let last_failure = pods
            .iter()
            .filter(|p| phase(p) == "Failed")
            .filter_map(|p| {
                p.status
                    .as_ref()?
                    .container_statuses
                    .as_ref()?
                    .iter()
                    .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0))
                    .max()
            })
            .max();
        let delay = if failed == 0 { 0 } else { (BACKOFF_BASE << (failed - 1).min(6)).min(BACKOFF_MAX) };
        let ready_at = last_failure.map_or(0, |t| t.as_second() + delay);
        if ready_at > now.as_second() {
            out.requeue = Some(Duration::from_secs(u64::try_from(ready_at - now.as_second()).unwrap_or(1)));
        } else if indexed {
            let busy: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
            let free = (0..completions.unwrap_or(0)).filter(|i| !completed.contains(i) && !busy.contains(i));
            out.create = free.take(usize::try_from(wanted - running).unwrap_or(0)).map(Some).collect();
        } else {
            out.create = vec![None; usize::try_from(wanted - running).unwrap_or(0)];
        }
    }
    status.active = Some(running + count(out.create.len()) - count(out.delete.len()));
    if let Some(d) = spec.active_deadline_seconds {
        let due = start.0.as_second() + d - now.as_second();
        let until = Duration::from_secs(u64::try_from(due).unwrap_or(1).max(1));
        out.requeue = Some(out.requeue.map_or(until, |r| r.min(until)));
    }
    out.status = status;
    out
}

/// A pod for `job` (at `index`, for an Indexed Job).
fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let template = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    let generate_name = match index {
        Some(i) => {
            annotations.insert(COMPLETION_INDEX.into(), i.to_string());
            labels.insert(COMPLETION_INDEX.into(), i.to_string());
            spec.hostname.get_or_insert_with(|| format!("{name}-{i}"));
            for c in &mut spec.containers {
                c.env.get_or_insert_with(Vec::new).push(k8s_openapi::api::core::v1::EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: Some(i.to_string()),
                    value_from: None,
                });
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            owner_references: Some(vec![controller_reference(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

struct Ctx {
    client: kube::Client,
    /// Deletes finished Jobs past their TTL (upstream's TTL-after-finished controller's account).
    ttl_client: kube::Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    recorder: Recorder,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(job) = ctx.jobs.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = work::in_namespace(&ctx.pods, &key.namespace)
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    let plan = plan(&job, &pods, Timestamp::now());
    let api = Api::<Pod>::namespaced(ctx.client.clone(), &key.namespace);
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &key.namespace);
    if plan.expire {
        let expired = Api::<Job>::namespaced(ctx.ttl_client.clone(), &key.namespace);
        return match expired.delete(&key.name, &DeleteParams::foreground()).await {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(e),
        };
    }
    for index in &plan.create {
        let pod = api.create(&PostParams::default(), &new_pod(&job, *index)).await?;
        let name = pod.metadata.name.unwrap_or_default();
        ctx.recorder
            .object(object_reference(job.as_ref()), Type::Normal, "SuccessfulCreate", &format!("Created pod: {name}"))
            .await;
    }
    work::delete_pods(&api, &plan.delete, &ctx.recorder, &object_reference(job.as_ref())).await?;
    for (ty, reason, message) in &plan.events {
        ctx.recorder.object(object_reference(job.as_ref()), *ty, reason, message).await;
    }
    if job.status.as_ref() != Some(&plan.status) {
        let patch = json!({"status": plan.status});
        match jobs.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => drop(other?),
        }
    }
    // Creates and deletes show in the cache soon; look again then rather than count them twice.
    if !plan.create.is_empty() || !plan.delete.is_empty() {
        let wanted = pods.len() + plan.create.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            let seen = work::in_namespace(&ctx.pods, &key.namespace)
                .iter()
                .filter(|p| is_controlled_by(&p.metadata, &uid))
                .count();
            if seen >= wanted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(plan.requeue)
}

/// Run the Job controller until the process stops.
pub async fn run(informers: &Informers) {
    let (queue, jobs, pods) = work::watch_owned::<Job, Pod>(informers, RESYNC).await;
    let client = informers.client_as(crate::identity::JOB);
    let ctx = Ctx {
        recorder: Recorder::new(client.clone(), "job-controller", ""),
        client,
        ttl_client: informers.client_as(crate::identity::TTL_AFTER_FINISHED),
        jobs,
        pods,
    };
    work::drive(queue, "Job", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests;
