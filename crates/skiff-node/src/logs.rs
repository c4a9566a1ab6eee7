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
}
