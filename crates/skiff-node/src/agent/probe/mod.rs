//! Probes, as the kubelet's prober runs them: per container attempt a startup, a liveness and a
//! readiness [`Tracker`] (timing and thresholds, pure) and [`check`] to carry one probe out
//! (HTTP(S), gRPC and TCP from the node into the pod's network, exec through the runtime). A failed
//! startup or liveness probe makes the container `unhealthy` (the worker's plan restarts it); a
//! readiness probe decides the container's `ready`, and so the pod's Ready condition.

pub(crate) mod check;
mod grpc;
mod http;
pub(crate) mod target;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Probe};
use std::time::{Duration, Instant};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    /// As event messages name it (`Liveness probe failed: ...`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Failed, with the kubelet's words for why (`HTTP probe failed with statuscode: 500`).
    Failure(String),
}

/// One probe of one container attempt: its settings, and where its results stand.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub kind: Kind,
    pub probe: Probe,
    period: Duration,
    pub timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    /// When it runs next.
    next: Instant,
    /// The latest outcome and how many times in a row it came.
    last: Option<(bool, u32)>,
    /// The result once a threshold was reached (None: not yet).
    pub result: Option<bool>,
}

fn seconds(v: Option<i32>, default: u64, min: u64) -> Duration {
    Duration::from_secs(v.map_or(default, |s| s.max(0) as u64).max(min))
}

impl Tracker {
    /// A tracker for `probe` of an attempt that started at `started`: it first runs after
    /// `initialDelaySeconds`.
    pub fn new(kind: Kind, probe: &Probe, started: Instant) -> Tracker {
        Tracker {
            kind,
            probe: probe.clone(),
            period: seconds(probe.period_seconds, 10, 1),
            timeout: seconds(probe.timeout_seconds, 1, 1),
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            next: started + seconds(probe.initial_delay_seconds, 0, 0),
            last: None,
            result: None,
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Take an outcome: the result changes once `successThreshold` successes or
    /// `failureThreshold` failures came in a row. Returns whether it changed.
    pub fn record(&mut self, outcome: &Outcome, now: Instant) -> bool {
        let ok = *outcome == Outcome::Success;
        let count = match self.last {
            Some((was, n)) if was == ok => n + 1,
            _ => 1,
        };
        self.last = Some((ok, count));
        self.next = now + self.period;
        let threshold = if ok { self.success_threshold } else { self.failure_threshold };
        if count >= threshold && self.result != Some(ok) {
            self.result = Some(ok);
            return true;
        }
        false
    }
}

/// The probes of one container attempt.
#[derive(Debug, Clone)]
pub struct ContainerProbes {
    pub attempt: u32,
    pub trackers: Vec<Tracker>,
}

impl ContainerProbes {
    /// The probes `c` asks for, for its attempt `attempt` that started at `started`.
    pub fn of(c: &Container, attempt: u32, started: Instant) -> ContainerProbes {
        let kinds = [
            (Kind::Startup, &c.startup_probe),
            (Kind::Liveness, &c.liveness_probe),
            (Kind::Readiness, &c.readiness_probe),
        ];
        let trackers = kinds.into_iter().filter_map(|(k, p)| Some(Tracker::new(k, p.as_ref()?, started))).collect();
        ContainerProbes { attempt, trackers }
    }

    fn result(&self, kind: Kind) -> Option<Option<bool>> {
        self.trackers.iter().find(|t| t.kind == kind).map(|t| t.result)
    }

    /// The startup probe has succeeded, or there is none.
    pub fn started(&self) -> bool {
        self.result(Kind::Startup).is_none_or(|r| r == Some(true))
    }

    /// Ready: started, and the readiness probe has succeeded (or there is none).
    pub fn ready(&self) -> bool {
        self.started() && self.result(Kind::Readiness).is_none_or(|r| r == Some(true))
    }

    /// The probe whose failure means the container must be restarted, if one failed.
    pub fn unhealthy(&self) -> Option<Kind> {
        if self.result(Kind::Startup) == Some(Some(false)) {
            return Some(Kind::Startup);
        }
        (self.started() && self.result(Kind::Liveness) == Some(Some(false))).then_some(Kind::Liveness)
    }

    /// Whether `t` runs at all now: the startup probe until it succeeds, then the others.
    fn active(&self, t: &Tracker) -> bool {
        if t.kind == Kind::Startup { t.result != Some(true) } else { self.started() }
    }

    /// The probes to run now.
    pub fn due(&self, now: Instant) -> Vec<usize> {
        (0..self.trackers.len()).filter(|i| self.active(&self.trackers[*i]) && self.trackers[*i].due(now)).collect()
    }

    /// When the next probe is due (None: none will run).
    pub fn next_due(&self) -> Option<Instant> {
        self.trackers.iter().filter(|t| self.active(t)).map(|t| t.next).min()
    }

    /// A running container's status as its probes say: `started` and `ready`.
    pub fn adjust(&self, status: &mut ContainerStatus) {
        if status.state.as_ref().is_some_and(|s| s.running.is_some()) {
            status.started = Some(self.started());
            status.ready = self.ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(probes: serde_json::Value) -> Container {
        let mut c = json!({"name": "app"});
        if let (Some(c), Some(p)) = (c.as_object_mut(), probes.as_object()) {
            c.extend(p.clone());
        }
        serde_json::from_value(c).expect("container")
    }

    const FAIL: fn() -> Outcome = || Outcome::Failure("HTTP probe failed with statuscode: 500".into());

    #[test]
    fn thresholds_decide_results_and_periods_the_timing() {
        let t0 = Instant::now();
        let probe = json!({"tcpSocket": {"port": 80}, "initialDelaySeconds": 5, "periodSeconds": 2, "failureThreshold": 2, "successThreshold": 2});
        let mut t = Tracker::new(Kind::Readiness, &serde_json::from_value(probe).expect("probe"), t0);
        assert!(!t.due(t0 + Duration::from_secs(4)));
        assert!(t.due(t0 + Duration::from_secs(5)));
        let at = |s| t0 + Duration::from_secs(s);
        assert!(!t.record(&Outcome::Success, at(5)), "one success of two");
        assert!(!t.due(at(6)));
        assert!(t.record(&Outcome::Success, at(7)));
        assert_eq!(t.result, Some(true));
        assert!(!t.record(&FAIL(), at(9)), "one failure of two");
        assert!(!t.record(&Outcome::Success, at(11)), "a success resets the failures");
        assert!(!t.record(&FAIL(), at(13)));
        assert!(t.record(&FAIL(), at(15)));
        assert_eq!(t.result, Some(false));
    }

    #[test]
    fn startup_gates_liveness_and_readiness_and_failures_make_the_container_unhealthy() {
        let t0 = Instant::now();
        let c = container(json!({
            "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 1},
            "livenessProbe": {"httpGet": {"port": 80}, "failureThreshold": 1},
            "readinessProbe": {"tcpSocket": {"port": 80}},
        }));
        let mut p = ContainerProbes::of(&c, 0, t0);
        let kinds = |p: &ContainerProbes, due: Vec<usize>| due.iter().map(|i| p.trackers[*i].kind).collect::<Vec<_>>();
        assert_eq!(kinds(&p, p.due(t0)), [Kind::Startup]);
        assert!(!p.started() && !p.ready());
        p.trackers[0].record(&Outcome::Success, t0);
        assert!(p.started());
        assert!(!p.ready(), "not ready before the readiness probe succeeds");
        assert_eq!(kinds(&p, p.due(t0)), [Kind::Liveness, Kind::Readiness]);
        p.trackers[2].record(&Outcome::Success, t0);
        assert!(p.ready());
        assert_eq!(p.unhealthy(), None);
        p.trackers[1].record(&FAIL(), t0);
        assert_eq!(p.unhealthy(), Some(Kind::Liveness));

        let mut q = ContainerProbes::of(&c, 1, t0);
        q.trackers[0].record(&FAIL(), t0);
        assert_eq!(q.unhealthy(), Some(Kind::Startup));
        // No probes: started and ready as soon as it runs, never unhealthy.
        let none = ContainerProbes::of(&container(json!({})), 0, t0);
        assert!(none.ready() && none.unhealthy().is_none() && none.next_due().is_none());
    }
}
