//! Container logs in the CRI format the kubelet reads (`<RFC3339Nano> <stream> <P|F> <content>`):
//! the record format here, the shim's side in [`writer`] (a container's output → rotating log
//! files), the agent's side in [`reader`] (the selection `kubectl logs` asks for: tailLines,
//! sinceTime, timestamps, limitBytes; and following a log across rotations).

pub(crate) mod reader;
pub(crate) mod writer;

pub use reader::{Selection, select, stream};
pub use writer::{CriWriter, LogLimits, RotatingLog, SharedLog};

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

/// `path.1`, `path.2`, ...: the rotated files of a log, newest first.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
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

    #[test]
    fn a_fallback_message_is_the_logs_last_80_lines_at_most_2048_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        assert_eq!(reader::fallback_message(&path), None);
        let lines: String = (0..100).map(|i| format!("{T1} stderr F line {i}\n")).collect();
        std::fs::write(&path, lines).expect("write");
        let message = reader::fallback_message(&path).expect("a message");
        assert!(message.starts_with("line 20\n") && message.ends_with("line 99\n"), "{message}");
        let long: String = (0..100).map(|i| format!("{T1} stderr F {i:0>100}\n")).collect();
        std::fs::write(&path, long).expect("write");
        assert_eq!(reader::fallback_message(&path).expect("a message").len(), 2048);
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
