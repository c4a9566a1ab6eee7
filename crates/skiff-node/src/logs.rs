//! Container logs in the CRI format the kubelet reads (`<RFC3339Nano> <stream> <P|F> <content>`),
//! and the selection `kubectl logs` asks for (tailLines, sinceTime, timestamps, limitBytes).

use std::io::{self, Write};

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

    fn record(&mut self, content: &[u8], partial: bool, now: &str) -> io::Result<()> {
        write!(self.out, "{now} {} {} ", self.stream.tag(), if partial { 'P' } else { 'F' })?;
        self.out.write_all(content)?;
        self.out.write_all(b"\n")
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
/// everything it wrote has been sent.
pub fn stream(
    path: std::path::PathBuf,
    sel: Selection,
    follow: bool,
    finished: impl Fn() -> bool + Send + 'static,
) -> futures::stream::BoxStream<'static, io::Result<bytes::Bytes>> {
    struct State<F> {
        path: std::path::PathBuf,
        sel: Selection,
        offset: u64,
        first: bool,
        follow: bool,
        budget: Option<usize>,
        finished: F,
    }
    let state = State { path, budget: sel.limit_bytes, sel, offset: 0, first: true, follow, finished };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if st.budget == Some(0) || (!st.first && !st.follow) {
                return None;
            }
            // Checked before reading: whatever the attempt wrote before it ended is then in the file.
            let done = (st.finished)();
            let chunk = match read_complete_lines(&st.path, st.offset).await {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !st.first => return None,
                Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
                Err(e) => return Some((Err(e), State { follow: false, first: false, ..st })),
            };
            st.offset += chunk.len() as u64;
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

/// The log text from `offset` up to its last complete line.
async fn read_complete_lines(path: &std::path::Path, offset: u64) -> io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(io::SeekFrom::Start(offset)).await?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).await?;
    let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
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
}
