//! Subcommand implementations: each parses nothing and prints what the library returns.

pub mod identity;
pub mod images;
pub mod node;
pub mod progress;

use std::io::Write;

/// Print to stdout; a closed pipe (`skiff images | head`) ends output quietly.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// Until SIGTERM or SIGINT.
pub async fn wait_for_signal() -> anyhow::Result<()> {
    Signals::install()?.recv().await;
    Ok(())
}

/// SIGTERM and SIGINT, caught from when they are installed: one that arrives while the server is
/// still starting is kept for when it is ready to stop cleanly, instead of killing the process.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
