//! A log file rotated by size, as kube-apiserver's (lumberjack) is: past `max_size` the file
//! is renamed `NAME-2006-01-02T15-04-05.000.EXT` (UTC) and a new one started; backups beyond
//! `max_backups`, or older than `max_age` by the time in their name, are removed.
//! (The `file-rotate` crate keeps either a count or an age, not both as upstream does.)

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When to rotate and what to keep; zero turns each limit off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub max_backups: usize,
    pub max_age: Duration,
}

pub struct RotatingFile {
    path: PathBuf,
    limits: Rotation,
    file: BufWriter<File>,
    size: u64,
}

/// The log is readable by its owner only: it holds who did what, and request bodies.
fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

impl RotatingFile {
    pub fn open(path: &Path, limits: Rotation) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let file = open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile { path: path.to_path_buf(), limits, file: BufWriter::new(file), size })
    }

    /// Write one whole line, rotating first if it would take the file past its size.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.limits.max_size > 0 && self.size > 0 && self.size + len > self.limits.max_size {
            self.rotate(jiff::Timestamp::now())?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn rotate(&mut self, now: jiff::Timestamp) -> io::Result<()> {
        self.file.flush()?;
        let mut at = now;
        let mut backup = self.backup_name(at);
        // Two rotations in one millisecond must not overwrite each other.
        while backup.exists() {
            at = at.checked_add(jiff::SignedDuration::from_millis(1)).map_err(io::Error::other)?;
            backup = self.backup_name(at);
        }
        std::fs::rename(&self.path, &backup)?;
        self.file = BufWriter::new(open(&self.path)?);
        self.size = 0;
        if let Err(e) = self.prune(now) {
            tracing::warn!(error = %e, path = %self.path.display(), "removing old audit logs");
        }
        Ok(())
    }

    /// (directory, `NAME-`, `.EXT`): what every backup's name is made of.
    fn parts(&self) -> (PathBuf, String, String) {
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = self.path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
        let stem = name[..name.len() - ext.len()].to_string();
        (dir, format!("{stem}-"), ext)
    }

    fn backup_name(&self, at: jiff::Timestamp) -> PathBuf {
        let (dir, prefix, ext) = self.parts();
        dir.join(format!("{prefix}{}{ext}", at.strftime("%Y-%m-%dT%H-%M-%S%.3f")))
    }

    /// The backups on disk, newest first.
    fn backups(&self) -> io::Result<Vec<(jiff::Timestamp, PathBuf)>> {
        let (dir, prefix, ext) = self.parts();
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let stamp = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(&ext)).and_then(parse_stamp);
            if let Some(at) = stamp {
                found.push((at, entry.path()));
            }
        }
        found.sort_by_key(|b| std::cmp::Reverse(b.0));
        Ok(found)
    }

    fn prune(&self, now: jiff::Timestamp) -> io::Result<()> {
        let backups = self.backups()?;
        let cutoff = jiff::SignedDuration::try_from(self.limits.max_age).ok().and_then(|age| now.checked_sub(age).ok());
        for (i, (at, path)) in backups.iter().enumerate() {
            let too_many = self.limits.max_backups > 0 && i >= self.limits.max_backups;
            let too_old = !self.limits.max_age.is_zero() && cutoff.is_some_and(|c| *at < c);
            if too_many || too_old {
                std::fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

/// `2006-01-02T15-04-05.000` (UTC) back to a time.
fn parse_stamp(s: &str) -> Option<jiff::Timestamp> {
    let (date, time) = s.split_once('T')?;
    if date.len() != 10 || time.len() != 12 {
        return None;
    }
    format!("{date}T{}Z", time.replacen('-', ":", 2)).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn a_full_file_is_renamed_with_its_time_and_a_new_one_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs/audit.log");
        let mut f = RotatingFile::open(&path, Rotation { max_size: 20, ..Default::default() }).expect("open");
        f.write_line(b"0123456789\n").expect("write");
        f.write_line(b"abcdefgh\n").expect("write");
        f.write_line(b"second file\n").expect("write");
        f.flush().expect("flush");
        let files = names(path.parent().expect("dir"));
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[1], "audit.log");
        assert!(files[0].starts_with("audit-") && files[0].ends_with(".log"), "{files:?}");
        let backup = path.with_file_name(&files[0]);
        assert_eq!(std::fs::read_to_string(&backup).expect("backup"), "0123456789\nabcdefgh\n");
        assert_eq!(std::fs::read_to_string(&path).expect("current"), "second file\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().expect("dir")).expect("stat").permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn backups_past_the_count_or_the_age_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let limits = Rotation { max_size: 1, max_backups: 2, max_age: Duration::from_secs(24 * 3600) };
        // An old backup from before, and an unrelated file that looks nothing like one.
        std::fs::write(dir.path().join("audit-2001-01-01T00-00-00.000.log"), "old").expect("write");
        std::fs::write(dir.path().join("audit-notes.log"), "keep").expect("write");
        let mut f = RotatingFile::open(&path, limits).expect("open");
        for i in 0..5 {
            f.write_line(format!("{i}\n").as_bytes()).expect("write");
        }
        f.flush().expect("flush");
        let files = names(dir.path());
        let stamp = |n: &String| n.strip_prefix("audit-").and_then(|n| n.strip_suffix(".log")).and_then(parse_stamp);
        let backups: Vec<_> = files.iter().filter(|n| stamp(n).is_some()).collect();
        assert_eq!(backups.len(), 2, "{files:?}");
        assert!(!files.iter().any(|n| n.contains("2001")), "{files:?}");
        assert!(files.contains(&"audit-notes.log".to_string()));
        assert_eq!(std::fs::read_to_string(&path).expect("current"), "4\n");

        // By age alone: with no count limit, only the old one goes.
        std::fs::write(dir.path().join("audit-2001-01-01T00-00-00.000.log"), "old").expect("write");
        let mut f = RotatingFile::open(&path, Rotation { max_backups: 0, ..limits }).expect("open");
        f.write_line(b"5\n").expect("write");
        assert!(!names(dir.path()).iter().any(|n| n.contains("2001")));
    }

    #[test]
    fn stamps_read_back() {
        let at: jiff::Timestamp = "2024-03-04T05:06:07.089Z".parse().expect("ts");
        let f = RotatingFile {
            path: PathBuf::from("/var/log/audit.log"),
            limits: Rotation::default(),
            file: BufWriter::new(tempfile::tempfile().expect("file")),
            size: 0,
        };
        assert_eq!(f.backup_name(at), PathBuf::from("/var/log/audit-2024-03-04T05-06-07.089.log"));
        assert_eq!(parse_stamp("2024-03-04T05-06-07.089"), Some(at));
        assert_eq!(parse_stamp("notes"), None);
    }
}
