//! Where events go: a bounded queue and one writer thread, so a slow disk never holds a
//! request. When the queue is full, events are dropped and counted, with one warning, as
//! upstream's buffered backend does.

use super::rotate::RotatingFile;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Events queued at most (upstream's buffer size).
const CAPACITY: usize = 10_000;
/// Bytes queued at most: events carry request and response objects.
const MAX_QUEUED_BYTES: usize = 64 << 20;
/// Lines written between flushes while the queue stays busy.
const BATCH: usize = 1_000;

pub enum Output {
    Stdout,
    File(RotatingFile),
}

impl Output {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout => io::stdout().lock().write_all(line),
            Output::File(f) => f.write_line(line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout => io::stdout().lock().flush(),
            Output::File(f) => f.flush(),
        }
    }
}

pub struct Sink {
    tx: SyncSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl Sink {
    pub fn start(output: Output) -> io::Result<Sink> {
        let (tx, rx) = sync_channel(CAPACITY);
        let queued = Arc::new(AtomicUsize::new(0));
        let writer_queued = queued.clone();
        std::thread::Builder::new().name("audit-log".into()).spawn(move || write_loop(rx, output, &writer_queued))?;
        Ok(Sink { tx, queued, sent: AtomicU64::new(0), dropped: AtomicU64::new(0) })
    }

    /// Queue one line; never waits.
    pub fn send(&self, line: Vec<u8>) {
        let len = line.len();
        if self.queued.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return self.drop_one();
        }
        match self.tx.try_send(line) {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(len, Ordering::Relaxed);
                self.drop_one();
            }
        }
    }

    fn drop_one(&self) {
        if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!("the audit log is not keeping up: events are being dropped");
        }
    }

    /// Events queued for the log so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn write_loop(rx: Receiver<Vec<u8>>, mut out: Output, queued: &AtomicUsize) {
    let mut failing = false;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(line) = next.take() {
            queued.fetch_sub(line.len(), Ordering::Relaxed);
            report(&mut failing, out.write_line(&line));
            written += 1;
            if written < BATCH {
                next = rx.try_recv().ok();
            }
        }
        report(&mut failing, out.flush());
    }
}

/// Log the first failure of a run of them, and the recovery.
fn report(failing: &mut bool, result: io::Result<()>) {
    match result {
        Err(e) if !*failing => {
            *failing = true;
            tracing::error!(error = %e, "writing the audit log");
        }
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!("writing the audit log again");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::rotate::Rotation;
    use std::time::{Duration, Instant};

    #[test]
    fn lines_reach_the_file_and_a_full_queue_drops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let file = RotatingFile::open(&path, Rotation::default()).expect("open");
        let sink = Sink::start(Output::File(file)).expect("start");
        for i in 0..100 {
            sink.send(format!("{{\"n\":{i}}}\n").into_bytes());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&path).map(|s| s.lines().count()).unwrap_or(0) < 100 {
            assert!(Instant::now() < deadline, "lines written");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!((sink.sent(), sink.dropped()), (100, 0));

        // A writer that never keeps up: a queue of one, the thread gone.
        let (tx, rx) = sync_channel::<Vec<u8>>(1);
        drop(rx);
        let stuck =
            Sink { tx, queued: Arc::new(AtomicUsize::new(0)), sent: AtomicU64::new(0), dropped: AtomicU64::new(0) };
        stuck.send(b"a\n".to_vec());
        stuck.send(b"b\n".to_vec());
        assert_eq!(stuck.dropped(), 2);
        assert_eq!(stuck.queued.load(Ordering::Relaxed), 0);
        let huge = Sink::start(Output::Stdout).expect("start");
        huge.send(vec![b'x'; MAX_QUEUED_BYTES + 1]);
        assert_eq!(huge.dropped(), 1);
    }
}
