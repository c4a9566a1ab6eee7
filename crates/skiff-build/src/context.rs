//! The build context: files under the context directory minus what `.dockerignore` excludes,
//! and source-path resolution for COPY/ADD (globs, and no way out of the context).

use globset::{Glob, GlobBuilder, GlobMatcher};
use std::path::{Component, Path, PathBuf, StripPrefixError};

/// Why `.dockerignore` could not be read or a COPY/ADD source not resolved; the messages name
/// the pattern or argument, since that is what the user has to fix.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A `.dockerignore` pattern that is not a valid glob.
    #[error("{pattern:?}: {source}")]
    IgnorePattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    /// A source with `..` that climbs above the context root.
    #[error("{arg}: forbidden path outside the build context")]
    Outside { arg: String },
    #[error("{arg}: not found")]
    NotFound { arg: String },
    #[error("{arg}: excluded by .dockerignore")]
    Ignored { arg: String },
    /// A source glob that does not parse.
    #[error("{arg}: {source}")]
    SourcePattern {
        arg: String,
        #[source]
        source: globset::Error,
    },
    /// A glob that matched nothing (or only ignored files).
    #[error("{arg}: no source files were specified")]
    NoMatch { arg: String },
    /// Walking the root for a glob's matches failed.
    #[error(transparent)]
    Walk(#[from] walkdir::Error),
    #[error(transparent)]
    Prefix(#[from] StripPrefixError),
}

/// `.dockerignore` rules: the last matching pattern wins; `!` re-includes.
#[derive(Default)]
pub struct Ignore {
    rules: Vec<(GlobMatcher, Option<GlobMatcher>, bool)>,
}

fn glob(pattern: &str) -> Result<GlobMatcher, ContextError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|source| ContextError::IgnorePattern { pattern: pattern.to_string(), source })
}

impl Ignore {
    pub fn load(context: &Path) -> Result<Self, ContextError> {
        let text = match std::fs::read_to_string(context.join(".dockerignore")) {
            Ok(t) => t,
            Err(_) => return Ok(Ignore::default()),
        };
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pat = clean(pat).to_string_lossy().into_owned();
            if pat.is_empty() {
                continue;
            }
            // A pattern also excludes everything below a matching directory.
            let below = glob(&format!("{pat}/**"))?;
            rules.push((glob(&pat)?, Some(below), negate));
        }
        Ok(Ignore { rules })
    }

    pub fn is_ignored(&self, rel: &Path) -> bool {
        let mut ignored = false;
        for (m, below, negate) in &self.rules {
            if m.is_match(rel) || below.as_ref().is_some_and(|b| b.is_match(rel)) {
                ignored = !negate;
            }
        }
        ignored
    }
}

/// Lexically normalize a relative path: drop `.`, resolve `..` without leaving the root.
pub fn clean(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Whether `p` (relative) tries to leave its root.
pub fn escapes(p: &str) -> bool {
    let mut depth = 0i32;
    for c in Path::new(p).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The sources a COPY/ADD argument names under `root`: a path, or a glob over what is there.
pub fn resolve_sources(root: &Path, arg: &str, ignore: &Ignore) -> Result<Vec<PathBuf>, ContextError> {
    if escapes(arg.trim_start_matches('/')) {
        return Err(ContextError::Outside { arg: arg.to_string() });
    }
    let rel = clean(arg.trim_start_matches('/'));
    let has_glob = arg.contains(['*', '?', '[']);
    if !has_glob {
        let full = root.join(&rel);
        if rel.as_os_str().is_empty() {
            return Ok(vec![root.to_path_buf()]);
        }
        if !full.exists() && std::fs::symlink_metadata(&full).is_err() {
            return Err(ContextError::NotFound { arg: arg.to_string() });
        }
        if ignore.is_ignored(&rel) {
            return Err(ContextError::Ignored { arg: arg.to_string() });
        }
        return Ok(vec![full]);
    }
    let matcher = Glob::new(&rel.to_string_lossy())
        .map_err(|source| ContextError::SourcePattern { arg: arg.to_string(), source })?
        .compile_matcher();
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry?;
        let rel = entry.path().strip_prefix(root)?;
        if matcher.is_match(rel) && !ignore.is_ignored(rel) {
            out.push(entry.path().to_path_buf());
        }
    }
    if out.is_empty() {
        return Err(ContextError::NoMatch { arg: arg.to_string() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_semantics() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".dockerignore"), "# comment\n*.log\nbuild\n!build/keep.txt\n**/secret\n")
            .expect("write");
        let ig = Ignore::load(dir.path()).expect("load");
        assert!(ig.is_ignored(Path::new("a.log")));
        assert!(!ig.is_ignored(Path::new("sub/a.log")), "patterns are rooted, like Docker's");
        assert!(ig.is_ignored(Path::new("build/x.o")));
        assert!(!ig.is_ignored(Path::new("build/keep.txt")));
        assert!(ig.is_ignored(Path::new("deep/dir/secret")));
        assert!(!ig.is_ignored(Path::new("src/main.rs")));
    }

    #[test]
    fn a_bad_dockerignore_pattern_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".dockerignore"), "a[\n").expect("write");
        let e = Ignore::load(dir.path()).err().expect("bad pattern");
        assert!(e.to_string().starts_with(r#""a[/**": "#), "{e}");
    }

    #[test]
    fn sources_resolve_inside_the_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.jar"), "a").expect("write");
        std::fs::write(dir.path().join("b.jar"), "b").expect("write");
        std::fs::write(dir.path().join("c.txt"), "c").expect("write");
        let ig = Ignore::default();
        assert_eq!(resolve_sources(dir.path(), "*.jar", &ig).expect("glob").len(), 2);
        assert_eq!(
            resolve_sources(dir.path(), "../etc/passwd", &ig).expect_err("escape").to_string(),
            "../etc/passwd: forbidden path outside the build context"
        );
        assert_eq!(resolve_sources(dir.path(), "missing", &ig).expect_err("missing").to_string(), "missing: not found");
        assert_eq!(resolve_sources(dir.path(), "./c.txt", &ig).expect("file"), vec![dir.path().join("c.txt")]);
    }
}
