//! The shim's side of container logs: a container's output turned into CRI records
//! ([`CriWriter`]) in a log file rotated by size ([`RotatingLog`]).

use super::{MAX_LINE, Stream, rotated};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Turns a container's output into CRI log records, keeping an unfinished line until its end.
pub struct CriWriter<W: Write> {
    out: W,
    stream: Stream,
    pending: Vec<u8>,
}

impl<W: Write> CriWriter<W> {
    pub fn new(out: W, stream: Stream) -> Self {
        CriWriter { out, stream, pending: Vec::new() }
    }

    /// Record `data` received at `now` (an RFC 3339 timestamp with nanoseconds).
    pub fn write(&mut self, data: &[u8], now: &str) -> io::Result<()> {
        self.pending.extend_from_slice(data);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            self.record(&line[..line.len() - 1], false, now)?;
        }
        while self.pending.len() >= MAX_LINE {
            let chunk: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            self.record(&chunk, true, now)?;
        }
        Ok(())
    }

    /// At the end of the stream: an unfinished last line is written as a full record.
    pub fn finish(&mut self, now: &str) -> io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.record(&rest, false, now)?;
        }
        self.out.flush()
    }

    /// One record, in one write: a rotating log switches files only between records.
    fn record(&mut self, content: &[u8], partial: bool, now: &str) -> io::Result<()> {
        let mut rec = Vec::with_capacity(now.len() + content.len() + 12);
        write!(rec, "{now} {} {} ", self.stream.tag(), if partial { 'P' } else { 'F' })?;
        rec.extend_from_slice(content);
        rec.push(b'\n');
        self.out.write_all(&rec)
    }
}

/// When a container's log file is rotated: the kubelet's `containerLogMaxSize` and
/// `containerLogMaxFiles` (the current file counts as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLimits {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits { max_size: 10 * 1024 * 1024, max_files: 5 }
    }
}

/// One attempt's log file, rotated by size: `N.log` is the current file, `N.log.1` the one before.
/// Each `write` is one whole record (see [`CriWriter`]), so no record is split across files.
pub struct RotatingLog {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    limits: LogLimits,
}

impl RotatingLog {
    pub fn open(path: &Path, limits: LogLimits) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog { path: path.to_path_buf(), file, size, limits })
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.limits.max_files.saturating_sub(1);
        if keep == 0 {
            self.file.set_len(0)?;
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, keep));
            for n in (1..keep).rev() {
                let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
            self.file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.limits.max_size {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A [`RotatingLog`] written by both of a container's streams (the shim is single-threaded).
#[derive(Clone)]
pub struct SharedLog(pub std::rc::Rc<std::cell::RefCell<RotatingLog>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}
