//! `/metrics` in the Prometheus text format, as upstream's API server serves it: the figures
//! that show a leak (open files, live tasks, threads), which the streaming tests watch.

/// The current figures as Prometheus text.
pub fn render() -> String {
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
        let text = render();
        assert!(gauge(&text, "process_open_fds").is_some_and(|n| n > 2), "{text}");
        assert!(gauge(&text, "skiff_runtime_alive_tasks").is_some(), "{text}");
        assert!(text.contains("# TYPE process_threads gauge"));
        assert_eq!(gauge("a_b 1\na 7\n", "a"), Some(7));
    }
}
