//! `/metrics` in the Prometheus text format, as upstream's API server serves it: the figures
//! that show a leak (open files, live tasks, threads), which the streaming tests watch, and the
//! audit log's counters (events written, events dropped).

/// The current figures as Prometheus text.
pub fn render(auditor: &crate::audit::Auditor) -> String {
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
    let tasks = tokio::runtime::Handle::try_current().map(|h| h.metrics().num_alive_tasks()).unwrap_or(0);
    let mut out = String::new();
    for (name, help, value) in [
        ("process_open_fds", "Number of open file descriptors.", fds),
        ("process_threads", "Number of OS threads in the process.", threads),
        ("skiff_runtime_alive_tasks", "Number of asynchronous tasks alive in the server.", tasks),
    ] {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
    }
    // Upstream's audit counters: events handed to the log, and those lost (a full queue).
    let (events, dropped) = auditor.counts();
    out.push_str(&format!(
        "# HELP apiserver_audit_event_total [ALPHA] Counter of audit events generated and sent to the audit backend.\n\
         # TYPE apiserver_audit_event_total counter\napiserver_audit_event_total {events}\n\
         # HELP apiserver_audit_error_total [ALPHA] Counter of audit events that failed to be audited properly. Plugin identifies the plugin affected by the error.\n\
         # TYPE apiserver_audit_error_total counter\napiserver_audit_error_total{{plugin=\"log\"}} {dropped}\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge(metrics: &str, name: &str) -> Option<u64> {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    #[tokio::test]
    async fn reports_files_and_tasks() {
        let text = render(&crate::audit::Auditor::disabled());
        assert!(gauge(&text, "process_open_fds").is_some_and(|n| n > 2), "{text}");
        assert!(gauge(&text, "skiff_runtime_alive_tasks").is_some(), "{text}");
        assert!(text.contains("# TYPE process_threads gauge"));
        assert_eq!(gauge(&text, "apiserver_audit_event_total"), Some(0));
        assert_eq!(gauge(&text, "apiserver_audit_error_total{plugin=\"log\"}"), Some(0));
        assert_eq!(gauge("a_b 1\na 7\n", "a"), Some(7));
    }
}
