//! Subcommand implementations: each parses nothing and prints what the library returns.

pub mod images;
pub mod progress;

use std::io::Write;

/// Print to stdout; a closed pipe (`skiff images | head`) ends output quietly.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}
