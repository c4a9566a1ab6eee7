//! Download progress bars on a terminal; nothing when stderr is not one.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use skiff_image::registry::{Progress, Quiet};
use std::collections::HashMap;
use std::sync::Mutex;

struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

impl Bars {
    fn bar(&self, digest: &str) -> Option<ProgressBar> {
        self.bars.lock().ok()?.get(digest).cloned()
    }
}

impl Progress for Bars {
    fn start(&self, digest: &str, size: u64, offset: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        if let Ok(style) = ProgressStyle::with_template("{prefix}: {msg:<11} [{bar:30}] {bytes}/{total_bytes}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(short(digest).to_string());
        bar.set_message(if offset > 0 { "Resuming" } else { "Downloading" });
        bar.set_position(offset);
        if let Ok(mut m) = self.bars.lock() {
            m.insert(digest.to_string(), bar);
        }
    }
    fn advance(&self, digest: &str, bytes: u64) {
        if let Some(b) = self.bar(digest) {
            b.inc(bytes);
        }
    }
    fn finish(&self, digest: &str, cached: bool) {
        match self.bar(digest) {
            Some(b) => b.finish_with_message("Pull complete"),
            None if cached => {
                let _ = self.multi.println(format!("{}: Already exists", short(digest)));
            }
            None => {}
        }
    }
}

/// Bars on a terminal, quiet otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Box::new(Bars { multi: MultiProgress::new(), bars: Mutex::new(HashMap::new()) })
    } else {
        Box::new(Quiet)
    }
}
