//! Container logs in the CRI format the kubelet reads (`<RFC3339Nano> <stream> <P|F> <content>`),
//! and the selection `kubectl logs` asks for (tailLines, sinceTime, timestamps, limitBytes).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Longest content written in one line; longer lines are split into partial (`P`) records.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

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

/// `path.1`, `path.2`, ...: the rotated files of a log, newest first.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
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

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub content: &'a str,
}

pub fn parse(line: &str) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or("");
    Some(Record { time, stream, partial: tag == "P", content })
}

/// What `kubectl logs` asked for.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub tail_lines: Option<usize>,
    /// Only records at or after this RFC 3339 time.
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
}

/// The bytes `kubectl logs` prints for the CRI log text `log`.
pub fn select(log: &str, sel: &Selection) -> Vec<u8> {
    // Join partial records into whole lines first: tailLines counts lines, not records.
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for rec in log.lines().filter_map(parse) {
        if let Some(since) = sel.since
            && rec.time.parse::<jiff::Timestamp>().is_ok_and(|t| t < since)
        {
            continue;
        }
        let (time, mut text) = open.take().unwrap_or_else(|| (rec.time.to_string(), String::new()));
        text.push_str(rec.content);
        if rec.partial {
            open = Some((time, text));
        } else {
            lines.push((time, text));
        }
    }
    lines.extend(open);
    let start = sel.tail_lines.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    let mut out = Vec::new();
    for (time, text) in &lines[start..] {
        if sel.timestamps {
            out.extend_from_slice(time.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
    if let Some(limit) = sel.limit_bytes {
        out.truncate(limit);
    }
    out
}

/// How often a followed log is checked for new records.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The bytes of one container attempt's log, as `kubectl logs` wants them; with `follow`, the
/// stream stays open and carries new lines until `finished` says the attempt has ended and
/// everything it wrote has been sent. Rotated files are read first; a rotation while following
/// is noticed (the path names a new file) and followed once the old file is drained.
pub fn stream(
    path: PathBuf,
    sel: Selection,
    follow: bool,
    finished: impl Fn() -> bool + Send + 'static,
) -> futures::stream::BoxStream<'static, io::Result<bytes::Bytes>> {
    struct State<F> {
        reader: LogReader,
        sel: Selection,
        first: bool,
        follow: bool,
        budget: Option<usize>,
        finished: F,
    }
    let reader = LogReader { path, current: None };
    let state = State { reader, budget: sel.limit_bytes, sel, first: true, follow, finished };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if st.budget == Some(0) || (!st.first && !st.follow) {
                return None;
            }
            // Checked before reading: whatever the attempt wrote before it ended is then in the file.
            let done = (st.finished)();
            let chunk = match st.reader.read(st.first).await {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !st.first => return None,
                Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
                Err(e) => return Some((Err(e), State { follow: false, first: false, ..st })),
            };
            // tailLines and sinceTime apply to what is there at the start; later lines all follow.
            let sel = if st.first {
                Selection { limit_bytes: st.budget, ..st.sel.clone() }
            } else {
                Selection { timestamps: st.sel.timestamps, limit_bytes: st.budget, ..Default::default() }
            };
            st.first = false;
            let out = select(&chunk, &sel);
            if let Some(b) = st.budget.as_mut() {
                *b -= out.len().min(*b);
            }
            if !out.is_empty() {
                return Some((Ok(bytes::Bytes::from(out)), st));
            }
            if !st.follow || done {
                return None;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }))
}

/// Reads a log file from where it left off, across rotations.
struct LogReader {
    path: PathBuf,
    /// The open file and its inode: a different inode at `path` means it was rotated.
    current: Option<(tokio::fs::File, u64)>,
}

impl LogReader {
    /// New complete lines; on the `first` read, the rotated files' lines before them.
    async fn read(&mut self, first: bool) -> io::Result<String> {
        let mut text = String::new();
        if first {
            for p in &rotation_chain(&self.path)[..] {
                if p != &self.path {
                    text.push_str(&String::from_utf8_lossy(&tokio::fs::read(p).await?));
                }
            }
        }
        loop {
            if self.current.is_none() {
                match open_with_inode(&self.path).await {
                    Ok(f) => self.current = Some(f),
                    Err(e) if e.kind() == io::ErrorKind::NotFound && !text.is_empty() => return Ok(text),
                    Err(e) => return Err(e),
                }
            }
            let Some((file, inode)) = self.current.as_mut() else { return Ok(text) };
            text.push_str(&read_complete_lines(file).await?);
            if !text.is_empty() || first {
                return Ok(text);
            }
            // Nothing new. Rotated away? Then this file is complete: go on with the one written
            // after it (a reader that fell behind walks the rotated files in order).
            let at_path = tokio::fs::metadata(&self.path).await.map(|m| std::os::unix::fs::MetadataExt::ino(&m));
            if at_path.is_ok_and(|i| i == *inode) {
                // Same file: truncated in place (one file kept)? Then start over at its beginning.
                use tokio::io::AsyncSeekExt;
                let len = file.metadata().await?.len();
                if file.stream_position().await? > len {
                    file.seek(io::SeekFrom::Start(0)).await?;
                    continue;
                }
                return Ok(text);
            }
            let chain = rotation_chain(&self.path);
            let here = chain.iter().position(|p| inode_of(p) == Some(*inode));
            let next = match here {
                Some(i) => chain.get(i + 1).cloned(),
                None => chain.first().cloned(),
            };
            match next {
                Some(p) => match open_with_inode(&p).await {
                    Ok(f) => self.current = Some(f),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(text),
                    Err(e) => return Err(e),
                },
                None => return Ok(text),
            }
        }
    }
}

/// A log's files in the order they were written: `path.N` ... `path.1`, then `path`.
fn rotation_chain(path: &Path) -> Vec<PathBuf> {
    let mut chain: Vec<PathBuf> = (1..).map(|n| rotated(path, n)).take_while(|p| p.exists()).collect();
    chain.reverse();
    chain.push(path.to_path_buf());
    chain
}

fn inode_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

async fn open_with_inode(path: &Path) -> io::Result<(tokio::fs::File, u64)> {
    let f = tokio::fs::File::open(path).await?;
    let inode = std::os::unix::fs::MetadataExt::ino(&f.metadata().await?);
    Ok((f, inode))
}

/// The text from the file's position up to its last complete line (the position stays there).
async fn read_complete_lines(f: &mut tokio::fs::File) -> io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).await?;
    let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    if end < buf.len() {
        f.seek(io::SeekFrom::Current(-((buf.len() - end) as i64))).await?;
    }
    buf.truncate(end);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-01-01T00:00:01.000000001Z";
    const T2: &str = "2026-01-01T00:00:02.000000002Z";

    #[test]
    fn writes_cri_records_with_partial_lines() {
        let mut buf = Vec::new();
        let mut w = CriWriter::new(&mut buf, Stream::Stdout);
        w.write(b"hello\nwor", T1).expect("write");
        w.write(b"ld\n", T2).expect("write");
        w.write(&vec![b'x'; MAX_LINE + 3], T2).expect("write");
        w.finish(T2).expect("finish");
        let text = String::from_utf8(buf).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("{T1} stdout F hello"));
        assert_eq!(lines[1], format!("{T2} stdout F world"));
        assert!(lines[2].starts_with(&format!("{T2} stdout P xxx")));
        assert_eq!(lines[3], format!("{T2} stdout F xxx"));
    }

    #[test]
    fn selects_like_kubectl_logs() {
        let log = format!("{T1} stdout F one\n{T1} stderr F two\n{T2} stdout P thr\n{T2} stdout F ee\n");
        assert_eq!(select(&log, &Selection::default()), b"one\ntwo\nthree\n");
        assert_eq!(select(&log, &Selection { tail_lines: Some(1), ..Default::default() }), b"three\n");
        let since = Selection { since: Some("2026-01-01T00:00:02Z".parse().expect("ts")), ..Default::default() };
        assert_eq!(select(&log, &since), b"three\n");
        let ts = Selection { timestamps: true, tail_lines: Some(1), ..Default::default() };
        assert_eq!(String::from_utf8(select(&log, &ts)).expect("utf8"), format!("{T2} three\n"));
        assert_eq!(select(&log, &Selection { limit_bytes: Some(5), ..Default::default() }), b"one\nt");
    }

    #[tokio::test]
    async fn follows_a_growing_log_until_the_attempt_ends() {
        use futures::StreamExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, format!("{T1} stdout F one\n{T1} stdout F two\n")).expect("write");
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let sel = Selection { tail_lines: Some(1), ..Default::default() };
        let mut s = stream(path.clone(), sel, true, move || flag.load(Ordering::SeqCst));
        assert_eq!(s.next().await.expect("first").expect("ok"), "two\n");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        std::io::Write::write_all(&mut f, format!("{T2} stdout F three\n{T2} stdout F fo").as_bytes()).expect("append");
        assert_eq!(s.next().await.expect("more").expect("ok"), "three\n");
        std::io::Write::write_all(&mut f, b"ur\n").expect("append");
        done.store(true, Ordering::SeqCst);
        assert_eq!(s.next().await.expect("last").expect("ok"), "four\n");
        assert!(s.next().await.is_none(), "ends once the attempt has ended");
    }

    #[test]
    fn rotates_by_size_between_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let limits = LogLimits { max_size: 100, max_files: 3 };
        let log = SharedLog(std::rc::Rc::new(std::cell::RefCell::new(RotatingLog::open(&path, limits).expect("open"))));
        let mut out = CriWriter::new(log.clone(), Stream::Stdout);
        let mut err = CriWriter::new(log, Stream::Stderr);
        for i in 0..10 {
            out.write(format!("out {i}\n").as_bytes(), T1).expect("write");
            err.write(format!("err {i}\n").as_bytes(), T1).expect("write");
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let files = [path.clone(), rotated(&path, 1), rotated(&path, 2)];
        for f in &files {
            let text = read(f);
            assert!(!text.is_empty() && text.len() <= 100, "{f:?}: {text:?}");
            assert!(text.lines().all(|l| parse(l).is_some_and(|r| r.content.len() == 5)), "split record in {text:?}");
        }
        assert!(!rotated(&path, 3).exists(), "at most max_files files");
        assert!(read(&path).ends_with("err 9\n"));
    }

    #[tokio::test]
    async fn reads_rotated_files_and_follows_across_a_rotation() {
        use futures::StreamExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(rotated(&path, 2), format!("{T1} stdout F a\n")).expect("write");
        std::fs::write(rotated(&path, 1), format!("{T1} stdout F b\n")).expect("write");
        std::fs::write(&path, format!("{T1} stdout F c\n")).expect("write");
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let mut s = stream(path.clone(), Selection::default(), true, move || flag.load(Ordering::SeqCst));
        assert_eq!(s.next().await.expect("first").expect("ok"), "a\nb\nc\n");
        // The writer adds to the old file, rotates it away and goes on in a new one.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        std::io::Write::write_all(&mut f, format!("{T2} stdout F d\n").as_bytes()).expect("append");
        std::fs::rename(&path, rotated(&path, 1)).expect("rotate");
        std::fs::write(&path, format!("{T2} stdout F e\n")).expect("write");
        let mut got = String::new();
        while got != "d\ne\n" {
            let chunk = s.next().await.expect("more").expect("ok");
            got.push_str(std::str::from_utf8(&chunk).expect("utf8"));
        }
        done.store(true, Ordering::SeqCst);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn a_reader_behind_by_several_rotations_loses_nothing() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, format!("{T1} stdout F a\n")).expect("write");
        let mut s = stream(path.clone(), Selection::default(), true, || false);
        assert_eq!(s.next().await.expect("first").expect("ok"), "a\n");
        // Two rotations before the reader looks again: a → .2, b → .1, c current.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        std::io::Write::write_all(&mut f, format!("{T2} stdout F a2\n").as_bytes()).expect("append");
        std::fs::rename(&path, rotated(&path, 1)).expect("rotate");
        std::fs::write(&path, format!("{T2} stdout F b\n")).expect("write");
        std::fs::rename(rotated(&path, 1), rotated(&path, 2)).expect("rotate");
        std::fs::rename(&path, rotated(&path, 1)).expect("rotate");
        std::fs::write(&path, format!("{T2} stdout F c\n")).expect("write");
        let mut got = String::new();
        while got != "a2\nb\nc\n" {
            let chunk = s.next().await.expect("more").expect("ok");
            got.push_str(std::str::from_utf8(&chunk).expect("utf8"));
            assert!(got.len() <= 8, "{got:?}");
        }
    }
}
