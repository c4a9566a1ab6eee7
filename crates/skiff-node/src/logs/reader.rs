//! The agent's side of container logs: the bytes `kubectl logs` asks for ([`select`]), and a
//! followed log read across rotations ([`stream`]).

use super::{parse, rotated};
use std::io;
use std::path::{Path, PathBuf};

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

/// A failed container's termination message under `terminationMessagePolicy:
/// FallbackToLogsOnError`: the last 80 lines of its log, at most the last 2048 bytes, as the
/// kubelet takes them (None: no log, or an empty one).
pub fn fallback_message(log: &Path) -> Option<String> {
    const LINES: usize = 80;
    const BYTES: usize = 2048;
    let text = std::fs::read_to_string(log).ok()?;
    let tail = select(&text, &Selection { tail_lines: Some(LINES), ..Default::default() });
    let tail = &tail[tail.len().saturating_sub(BYTES)..];
    (!tail.is_empty()).then(|| String::from_utf8_lossy(tail).into_owned())
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
