//! A real terminal for kubectl's `-it` commands: tmux, driven by keys and read from its screen.

use super::Kubectl;
use std::process::Stdio;

/// A shell command line running `kubectl ARGS` with this kubectl's environment (for tmux).
pub fn shell_line(kv: &Kubectl, args: &str) -> String {
    let cmd = kv.command(&[]);
    let env: String = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={} ", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    format!("{env}{} {args}", cmd.get_program().to_string_lossy())
}

/// A tmux session running `command` in a terminal of `cols`×`rows`, killed on drop.
pub struct Terminal(String);

impl Terminal {
    pub fn start(name: &str, command: &str, cols: u16, rows: u16) -> Self {
        let _ = std::process::Command::new("tmux").args(["kill-session", "-t", name]).stderr(Stdio::null()).status();
        // Killing the last session makes the tmux server exit, asynchronously: a new session
        // started meanwhile can reach the exiting server and fail. Try again briefly.
        let mut failure = String::new();
        for _ in 0..10 {
            let out = std::process::Command::new("tmux")
                .args(["new-session", "-d", "-s", name, "-x", &cols.to_string(), "-y", &rows.to_string(), command])
                .output()
                .expect("tmux (Debian package tmux)");
            if out.status.success() {
                return Terminal(name.to_string());
            }
            failure = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("tmux new-session: {failure}")
    }

    pub fn keys(&self, keys: &str) {
        let ok = std::process::Command::new("tmux").args(["send-keys", "-t", &self.0, keys, "Enter"]).status();
        assert!(ok.expect("tmux").success());
    }

    pub fn interrupt(&self) {
        let ok = std::process::Command::new("tmux").args(["send-keys", "-t", &self.0, "C-c"]).status();
        assert!(ok.expect("tmux").success());
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let (x, y) = (cols.to_string(), rows.to_string());
        let ok = std::process::Command::new("tmux").args(["resize-window", "-t", &self.0, "-x", &x, "-y", &y]).status();
        assert!(ok.expect("tmux").success());
    }

    pub fn screen(&self) -> String {
        let out = std::process::Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output();
        String::from_utf8_lossy(&out.expect("tmux").stdout).into_owned()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}
