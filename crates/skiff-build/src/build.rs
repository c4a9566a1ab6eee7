//! `skiff build`: run a Dockerfile into an image in the local store.
//!
//! Each stage starts from `scratch`, an earlier stage, a local image or a pulled one. Config
//! instructions change the config; COPY and ADD make layers; every layer-making step has a cache
//! key (the previous key, the instruction, and the content of its sources), so an unchanged step
//! reuses its layer. RUN runs its command in a container (see `run.rs`); its key is the previous
//! key, the command and the build arguments, as Docker caches it.

use crate::config::{BuildError, apply_change, apply_instruction};
use crate::context::{Ignore, clean, resolve_sources};
use crate::expand::expand;
use crate::run::{RunStep, Runner, write_upper_layer};
use oci_spec::image::{Config, Descriptor, History, HistoryBuilder};
use parse_dockerfile::{Instruction, Source};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use skiff_image::layer::{import_layer, new_config};
use skiff_image::registry::RegistryError;
use skiff_image::{Digest, Image, ImageStore, Reference};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf, StripPrefixError};

pub struct BuildOptions {
    pub context: PathBuf,
    /// Default: `CONTEXT/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<Reference>,
    pub build_args: HashMap<String, String>,
    pub target: Option<String>,
}

/// Finds a FROM image the store does not have (the CLI pulls it).
pub type Fetch<'a> = &'a dyn Fn(&Reference) -> Result<Image, RegistryError>;

/// Why a COPY/ADD layer, or the stage view it copies from, could not be made. The step puts its
/// own text in front, so these say only what failed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A source that vanished or cannot be read between resolving and copying it.
    #[error("{path}: {source}")]
    Source {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Walk(#[from] walkdir::Error),
    #[error(transparent)]
    Prefix(#[from] StripPrefixError),
    /// The overlay of a `COPY --from` stage's layers.
    #[error("mounting the stage's filesystem: {0}")]
    Mount(#[source] skiff_image::overlay::OverlayError),
    /// ADD's archive no longer reads as a tar when it is extracted.
    #[error("{path}: not a tar archive")]
    NotArchive { path: PathBuf },
    /// An ADD archive entry that would land outside the destination (`../`).
    #[error("{archive}: entry {entry} leaves the destination")]
    EntryEscapes { archive: PathBuf, entry: String },
}

fn err(step: &str, message: impl ToString) -> BuildError {
    BuildError::Parse(format!("{step}: {}", message.to_string()))
}

/// A cached layer: what a cache key produced.
#[derive(Serialize, Deserialize)]
struct CachedLayer {
    layer: Descriptor,
    diff_id: String,
}

struct Stage {
    name: Option<String>,
    layers: Vec<Descriptor>,
    diff_ids: Vec<Digest>,
    config: Config,
    history: Vec<History>,
    /// ARG and ENV values in scope, for substitution.
    vars: HashMap<String, String>,
    /// Running cache key: the identity of everything so far.
    key: String,
    /// Layer directories of the base image, to know what already exists.
    base_dirs: Vec<PathBuf>,
}

impl Stage {
    fn env_vars(config: &Config) -> HashMap<String, String> {
        config
            .env()
            .iter()
            .flatten()
            .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    }

    fn from_image(store: &ImageStore, name: Option<String>, img: &Image) -> Result<Self, BuildError> {
        let diff_ids = img.config.rootfs().diff_ids().iter().filter_map(|d| Digest::parse(d)).collect();
        let config = img.config.config().clone().unwrap_or_default();
        let vars = Self::env_vars(&config);
        Ok(Stage {
            name,
            layers: img.manifest.layers().clone(),
            diff_ids,
            history: img.config.history().clone().unwrap_or_default(),
            config,
            vars,
            key: img.manifest_digest.to_string(),
            base_dirs: store.unpack(img)?,
        })
    }

    fn scratch(name: Option<String>) -> Self {
        Stage {
            name,
            layers: vec![],
            diff_ids: vec![],
            config: Config::default(),
            history: vec![],
            vars: HashMap::new(),
            key: "scratch".into(),
            base_dirs: vec![],
        }
    }

    fn workdir(&self) -> String {
        self.config.working_dir().clone().unwrap_or_else(|| "/".into())
    }

    fn next_key(&mut self, step: &str, fingerprint: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.key.as_bytes());
        h.update(b"\n");
        h.update(step.as_bytes());
        h.update(b"\n");
        h.update(fingerprint.as_bytes());
        self.key = hex::encode(h.finalize());
        self.key.clone()
    }

    fn record(&mut self, created_by: &str, empty_layer: bool) -> Result<(), BuildError> {
        let mut b = HistoryBuilder::default();
        b = b.created(now()).created_by(created_by.to_string()).comment("buildkit.dockerfile.v0");
        if empty_layer {
            b = b.empty_layer(true);
        }
        self.history.push(b.build().map_err(|e| BuildError::Parse(e.to_string()))?);
        Ok(())
    }
}

fn now() -> String {
    format!("{}Z", jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.9f"))
}

/// An overlay view of a finished stage or image, for `COPY --from`; unmounted on drop.
struct RootView {
    path: PathBuf,
    _mount: Option<tempfile::TempDir>,
}

impl RootView {
    fn new(dirs: &[PathBuf], scratch_dir: &Path) -> Result<Self, LayerError> {
        match dirs {
            [] => Ok(RootView { path: scratch_dir.to_path_buf(), _mount: None }),
            [one] => Ok(RootView { path: one.clone(), _mount: None }),
            many => {
                let mnt = tempfile::tempdir()?;
                skiff_image::overlay::mount_readonly(many, mnt.path()).map_err(LayerError::Mount)?;
                Ok(RootView { path: mnt.path().to_path_buf(), _mount: Some(mnt) })
            }
        }
    }
}

impl Drop for RootView {
    fn drop(&mut self) {
        if self._mount.is_some() {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// One source for a layer: an absolute path and whether ownership comes from it (stages) or is root (context).
struct Src {
    path: PathBuf,
    keep_owner: bool,
    /// For the context: paths excluded by .dockerignore when walking directories.
    context_root: Option<PathBuf>,
}

struct CopySpec {
    dest: String,
    chown: Option<(u64, u64)>,
    chmod: Option<u32>,
    /// ADD: extract local tar archives into the destination.
    extract: bool,
}

/// `--chown=user[:group]`: numbers, or names looked up in the image's /etc/passwd and /etc/group
/// (a user alone also sets the group: the user's primary group, or the same number).
fn parse_chown(v: &str, step: &str, layers: &[PathBuf]) -> Result<(u64, u64), BuildError> {
    let read = |path: &str| layers.iter().rev().find_map(|d| fs::read_to_string(d.join(path)).ok()).unwrap_or_default();
    let lookup = |file: &str, name: &str| -> Option<(u64, Option<u64>)> {
        read(file).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.first() != Some(&name) {
                return None;
            }
            Some((f.get(2)?.parse().ok()?, f.get(3).and_then(|g| g.parse().ok())))
        })
    };
    let unknown = |what: &str, name: &str| err(step, format!("--chown={v}: unknown {what} {name:?} in the image"));
    let (user, group) = match v.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (v, None),
    };
    let (uid, primary) = match user.parse::<u64>() {
        Ok(n) => (n, Some(n)),
        Err(_) => lookup("etc/passwd", user).ok_or_else(|| unknown("user", user))?,
    };
    let gid = match group {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => lookup("etc/group", g).map(|(n, _)| n).ok_or_else(|| unknown("group", g))?,
        },
    };
    Ok((uid, gid))
}

/// The tar archive inside `path` (plain, gzip, bzip2 or xz), or `None` when it is not one:
/// ADD extracts archives and copies every other file as it is, as Docker does.
fn tar_reader(path: &Path) -> Option<Box<dyn Read>> {
    let mut magic = [0u8; 6];
    let n = fs::File::open(path).ok()?.read(&mut magic).ok()?;
    let open = || fs::File::open(path).ok();
    let mut inner: Box<dyn Read> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(open()?)),
        [b'B', b'Z', b'h', ..] => Box::new(bzip2::read::BzDecoder::new(open()?)),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => {
            // lzma-rs decodes whole streams: decompress into a temporary file first.
            let mut out = tempfile::tempfile().ok()?;
            lzma_rs::xz_decompress(&mut std::io::BufReader::new(open()?), &mut out).ok()?;
            out.seek(std::io::SeekFrom::Start(0)).ok()?;
            Box::new(out)
        }
        _ => Box::new(open()?),
    };
    let mut head = vec![0u8; 512];
    inner.read_exact(&mut head).ok()?;
    if &head[257..262] != b"ustar" {
        return None;
    }
    Some(Box::new(std::io::Cursor::new(head).chain(inner)))
}

/// Content fingerprint of the sources, for the cache key.
fn fingerprint(srcs: &[Src], ignore: &Ignore) -> Result<String, LayerError> {
    let mut h = Sha256::new();
    for s in srcs {
        for entry in walkdir::WalkDir::new(&s.path).sort_by_file_name() {
            let entry = entry?;
            if excluded(s, entry.path(), ignore) {
                continue;
            }
            let md = entry.path().symlink_metadata()?;
            h.update(entry.path().to_string_lossy().as_bytes());
            h.update(format!(" {:o} {} {} {}", md.mode(), md.uid(), md.gid(), md.len()).as_bytes());
            if md.is_file() {
                let mut f = fs::File::open(entry.path())?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            } else if md.file_type().is_symlink() {
                h.update(fs::read_link(entry.path())?.to_string_lossy().as_bytes());
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn excluded(s: &Src, path: &Path, ignore: &Ignore) -> bool {
    match &s.context_root {
        Some(root) => path.strip_prefix(root).is_ok_and(|rel| !rel.as_os_str().is_empty() && ignore.is_ignored(rel)),
        None => false,
    }
}

struct LayerWriter<W: Write> {
    tar: tar::Builder<W>,
    written_dirs: Vec<PathBuf>,
}

impl<W: Write> LayerWriter<W> {
    fn header(md: &fs::Metadata, kind: tar::EntryType, spec: &CopySpec, keep_owner: bool) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        let mode = if kind == tar::EntryType::Directory {
            md.mode() & 0o7777
        } else {
            spec.chmod.unwrap_or(md.mode() & 0o7777)
        };
        h.set_mode(mode);
        let (uid, gid) =
            spec.chown.unwrap_or(if keep_owner { (u64::from(md.uid()), u64::from(md.gid())) } else { (0, 0) });
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        h
    }

    /// Parent directories of `rel` that the base image does not have.
    fn parents(&mut self, rel: &Path, base_dirs: &[PathBuf]) -> std::io::Result<()> {
        let mut acc = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            acc.push(c);
            if self.written_dirs.contains(&acc) || base_dirs.iter().any(|d| d.join(&acc).symlink_metadata().is_ok()) {
                continue;
            }
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(0);
            self.tar.append_data(&mut h, format!("{}/", acc.display()), std::io::empty())?;
            self.written_dirs.push(acc.clone());
        }
        Ok(())
    }

    fn add_path(
        &mut self,
        src: &Path,
        rel: &Path,
        spec: &CopySpec,
        keep_owner: bool,
        base: &[PathBuf],
    ) -> std::io::Result<()> {
        self.parents(rel, base)?;
        let md = src.symlink_metadata()?;
        let ft = md.file_type();
        if ft.is_dir() {
            let mut h = Self::header(&md, tar::EntryType::Directory, spec, keep_owner);
            self.tar.append_data(&mut h, format!("{}/", rel.display()), std::io::empty())?;
            self.written_dirs.push(rel.to_path_buf());
        } else if ft.is_symlink() {
            let mut h = Self::header(&md, tar::EntryType::Symlink, spec, keep_owner);
            self.tar.append_link(&mut h, rel, fs::read_link(src)?)?;
        } else if ft.is_file() {
            let mut h = Self::header(&md, tar::EntryType::Regular, spec, keep_owner);
            h.set_size(md.len());
            self.tar.append_data(&mut h, rel, fs::File::open(src)?)?;
        }
        Ok(())
    }

    /// Re-emit a local tar archive's entries under `dest` (ADD's auto-extraction).
    fn add_archive(&mut self, archive: &Path, dest: &Path, base: &[PathBuf]) -> Result<(), LayerError> {
        let reader = tar_reader(archive).ok_or_else(|| LayerError::NotArchive { path: archive.to_path_buf() })?;
        let mut ar = tar::Archive::new(reader);
        for entry in ar.entries()? {
            let mut e = entry?;
            let path = e.path()?.to_string_lossy().into_owned();
            if crate::context::escapes(path.trim_start_matches('/')) {
                return Err(LayerError::EntryEscapes { archive: archive.to_path_buf(), entry: path });
            }
            let rel = dest.join(clean(&path));
            self.parents(&rel, base)?;
            let mut h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data)?;
            if h.entry_type().is_hard_link() {
                let link = e.link_name()?.unwrap_or_default().to_string_lossy().into_owned();
                self.tar.append_link(&mut h, &rel, dest.join(clean(&link)))?;
            } else if h.entry_type().is_symlink() {
                let link = e.link_name()?.unwrap_or_default().into_owned();
                self.tar.append_link(&mut h, &rel, link)?;
            } else {
                self.tar.append_data(&mut h, &rel, &data[..])?;
            }
        }
        Ok(())
    }
}

/// Write the layer a COPY/ADD produces into `out`.
fn write_layer(
    out: impl Write,
    srcs: &[Src],
    spec: &CopySpec,
    workdir: &str,
    base_dirs: &[PathBuf],
    ignore: &Ignore,
) -> Result<(), LayerError> {
    let dest_abs = if spec.dest.starts_with('/') {
        spec.dest.clone()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), spec.dest)
    };
    let dest_is_dir = spec.dest.ends_with('/') || spec.dest == "." || srcs.len() > 1;
    let dest = clean(&dest_abs);
    let mut w = LayerWriter { tar: tar::Builder::new(out), written_dirs: vec![] };
    w.tar.follow_symlinks(false);
    for s in srcs {
        let md = fs::metadata(&s.path).map_err(|source| LayerError::Source { path: s.path.clone(), source })?;
        if md.is_dir() {
            for entry in walkdir::WalkDir::new(&s.path).min_depth(1).sort_by_file_name() {
                let entry = entry?;
                if excluded(s, entry.path(), ignore) {
                    continue;
                }
                let rel = entry.path().strip_prefix(&s.path)?;
                w.add_path(entry.path(), &dest.join(rel), spec, s.keep_owner, base_dirs)?;
            }
        } else if spec.extract && tar_reader(&s.path).is_some() {
            w.add_archive(&s.path, &dest, base_dirs)?;
        } else {
            let target = if dest_is_dir { dest.join(s.path.file_name().unwrap_or_default()) } else { dest.clone() };
            w.add_path(&s.path, &target, spec, s.keep_owner, base_dirs)?;
        }
    }
    Ok(w.tar.into_inner()?.flush()?)
}

/// Run the Dockerfile; `log` receives one line per step.
pub fn build(
    store: &ImageStore,
    opts: &BuildOptions,
    fetch: Fetch<'_>,
    runner: Runner<'_>,
    log: &mut dyn FnMut(&str),
) -> Result<Image, BuildError> {
    let dockerfile_path = opts.dockerfile.clone().unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = fs::read_to_string(&dockerfile_path).map_err(|e| err(&dockerfile_path.display().to_string(), e))?;
    let file =
        parse_dockerfile::parse(&text).map_err(|e| BuildError::Parse(format!("{}: {e}", dockerfile_path.display())))?;
    let ignore = Ignore::load(&opts.context).map_err(|e| err(".dockerignore", e))?;
    let cache_dir = store.root().join("build-cache");
    fs::create_dir_all(&cache_dir).map_err(|e| err("build cache", e))?;
    let empty_dir = tempfile::tempdir().map_err(|e| err("build", e))?;

    // Global ARGs (before the first FROM) are visible to FROM lines.
    let mut global: HashMap<String, String> = HashMap::new();
    for a in file.global_args() {
        let (k, v) = parse_arg(&a.arguments.value);
        let v = opts.build_args.get(&k).cloned().or(v).unwrap_or_default();
        global.insert(k, v);
    }
    let stages: Vec<_> = file.stages().collect();
    let last = match &opts.target {
        Some(t) => stages
            .iter()
            .position(|s| s.from.as_.as_ref().is_some_and(|(_, n)| n.value.eq_ignore_ascii_case(t)))
            .ok_or_else(|| err("--target", format!("target stage {t:?} could not be found")))?,
        None => stages.len().checked_sub(1).ok_or_else(|| err("Dockerfile", "no FROM instruction"))?,
    };

    let mut done: Vec<(Option<String>, Image)> = Vec::new();
    let total: usize = stages[..=last].iter().map(|s| s.instructions.len() + 1).sum();
    let mut step_no = 0;
    for stage in &stages[..=last] {
        let name = stage.from.as_.as_ref().map(|(_, n)| n.value.to_lowercase());
        let base_name = expand(&stage.from.image.value, &global).map_err(|e| err("FROM", e))?;
        step_no += 1;
        log(&format!(
            "[{step_no}/{total}] FROM {base_name}{}",
            name.as_ref().map(|n| format!(" AS {n}")).unwrap_or_default()
        ));
        let mut st = if base_name == "scratch" {
            Stage::scratch(name.clone())
        } else if let Some((_, img)) =
            done.iter().find(|(n, _)| n.as_deref() == Some(base_name.to_lowercase().as_str()))
        {
            Stage::from_image(store, name.clone(), img)?
        } else {
            let r = Reference::parse(&base_name).map_err(|e| err(&format!("FROM {base_name}"), e))?;
            let img = match store.image(&r) {
                Ok(i) => i,
                Err(skiff_image::StoreError::NotFound(_)) => {
                    fetch(&r).map_err(|e| err(&format!("FROM {base_name}"), e))?
                }
                Err(e) => return Err(e.into()),
            };
            Stage::from_image(store, name.clone(), &img)?
        };
        for ins in stage.instructions {
            step_no += 1;
            let ctx = StepContext {
                store,
                opts,
                done: &done,
                ignore: &ignore,
                cache_dir: &cache_dir,
                empty_dir: empty_dir.path(),
                global: &global,
                runner,
            };
            run_instruction(&ctx, &mut st, ins, step_no, total, log)?;
        }
        let config = new_config(st.config.clone(), &st.diff_ids, st.history.clone(), &now())?;
        // Only the final stage is named; earlier stages stay untagged (prune removes them).
        let tags: &[Reference] = if std::ptr::eq(stage, &stages[last]) { &opts.tags } else { &[] };
        let img = store.put_image(&config, st.layers.clone(), tags)?;
        done.push((st.name.clone(), img));
    }
    done.pop().map(|(_, i)| i).ok_or_else(|| err("Dockerfile", "no stage was built"))
}

fn parse_arg(s: &str) -> (String, Option<String>) {
    match s.trim().split_once('=') {
        Some((k, v)) => {
            (k.trim().to_string(), Some(crate::words::split(v).map(|w| w.join(" ")).unwrap_or_else(|_| v.to_string())))
        }
        None => (s.trim().to_string(), None),
    }
}

/// A step's place in the build, `[3/7]` in the log.
#[derive(Clone, Copy)]
struct Step {
    no: usize,
    total: usize,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}/{}]", self.no, self.total)
    }
}

/// What every step of a build shares.
#[derive(Clone, Copy)]
struct StepContext<'a> {
    store: &'a ImageStore,
    opts: &'a BuildOptions,
    done: &'a [(Option<String>, Image)],
    ignore: &'a Ignore,
    cache_dir: &'a Path,
    empty_dir: &'a Path,
    global: &'a HashMap<String, String>,
    runner: Runner<'a>,
}

fn run_instruction(
    ctx: &StepContext<'_>,
    st: &mut Stage,
    ins: &Instruction<'_>,
    step_no: usize,
    total: usize,
    log: &mut dyn FnMut(&str),
) -> Result<(), BuildError> {
    let StepContext { opts, global, .. } = *ctx;
    match ins {
        Instruction::Arg(a) => {
            let (k, default) = parse_arg(&a.arguments.value);
            let v =
                opts.build_args.get(&k).cloned().or(default).or_else(|| global.get(&k).cloned()).unwrap_or_default();
            log(&format!("[{step_no}/{total}] ARG {k}"));
            st.vars.insert(k.clone(), v.clone());
            st.next_key("ARG", &format!("{k}={v}"));
            Ok(())
        }
        Instruction::Run(r) => {
            if !r.options.is_empty() || !r.here_docs.is_empty() {
                return Err(err(
                    &instruction_text(ins),
                    "RUN flags (--mount, --network) and here-documents are not supported yet",
                ));
            }
            let args = match &r.arguments {
                parse_dockerfile::Command::Exec(items) => items.value.iter().map(|s| s.value.to_string()).collect(),
                parse_dockerfile::Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.value.to_string()],
                _ => return Err(err("RUN", "an unsupported command form")),
            };
            run_step(ctx, st, args, Step { no: step_no, total }, log)
        }
        Instruction::Copy(c) => {
            let spec_text = format!("COPY {}{}", flags_text(&c.options), sources_text(&c.src, &c.dest.value));
            let step = Step { no: step_no, total };
            layer_step(ctx, st, &c.options, &c.src, &c.dest.value, false, &spec_text, step, log)
        }
        Instruction::Add(a) => {
            let spec_text = format!("ADD {}{}", flags_text(&a.options), sources_text(&a.src, &a.dest.value));
            let step = Step { no: step_no, total };
            layer_step(ctx, st, &a.options, &a.src, &a.dest.value, true, &spec_text, step, log)
        }
        Instruction::Cmd(_) | Instruction::Entrypoint(_) => {
            let text = instruction_text(ins);
            log(&format!("[{step_no}/{total}] {text}"));
            apply_instruction(&mut st.config, ins)?;
            st.next_key(&text, "");
            st.record(&text, true)
        }
        Instruction::Env(_)
        | Instruction::Label(_)
        | Instruction::Expose(_)
        | Instruction::User(_)
        | Instruction::Workdir(_)
        | Instruction::Volume(_)
        | Instruction::Stopsignal(_) => {
            let raw = instruction_text(ins);
            let text = expand(&raw, &st.vars).map_err(|e| err(&raw, e))?;
            log(&format!("[{step_no}/{total}] {text}"));
            apply_change(&mut st.config, &text)?;
            st.vars.extend(Stage::env_vars(&st.config));
            st.next_key(&text, "");
            st.record(&text, true)
        }
        Instruction::Maintainer(m) => {
            let text = format!("LABEL maintainer=\"{}\"", m.name.value.replace('"', "\\\""));
            apply_change(&mut st.config, &text)?;
            st.record(&format!("MAINTAINER {}", m.name.value), true)
        }
        Instruction::Healthcheck(_) => {
            log(&format!("[{step_no}/{total}] HEALTHCHECK ignored: Kubernetes uses the pod's probes instead"));
            Ok(())
        }
        other => Err(BuildError::NotAllowed {
            instruction: instruction_text(other).split_whitespace().next().unwrap_or("").into(),
            why: "not supported yet".into(),
        }),
    }
}

/// A RUN step: its command in a container over the stage so far; what it changed is the layer.
fn run_step(
    ctx: &StepContext<'_>,
    st: &mut Stage,
    args: Vec<String>,
    step: Step,
    log: &mut dyn FnMut(&str),
) -> Result<(), BuildError> {
    let StepContext { store, runner, .. } = *ctx;
    let text = match args.as_slice() {
        [sh, c, cmd] if sh == "/bin/sh" && c == "-c" => format!("RUN {cmd}"),
        _ => format!("RUN {}", serde_json::to_string(&args).unwrap_or_default()),
    };
    // Build arguments are the command's environment too, under the stage's ENV.
    let mut config = st.config.clone();
    let mut env = config.env().clone().unwrap_or_default();
    let defined: Vec<String> = env.iter().filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string())).collect();
    let mut build_args: Vec<String> =
        st.vars.iter().filter(|(k, _)| !defined.contains(k)).map(|(k, v)| format!("{k}={v}")).collect();
    build_args.sort();
    let key = st.next_key(&text, &build_args.join("\n"));
    env.extend(build_args);
    config.set_env(Some(env));
    let (stack, diff_ids) = (st.layers.clone(), st.diff_ids.clone());
    add_layer(ctx, st, &key, &text, step, log, |tmp| {
        if stack.is_empty() {
            return Err(err(&text, "RUN needs a base image with the command in it (the stage starts FROM scratch)"));
        }
        let layers = store.unpack_layers(&stack, &diff_ids)?;
        let work =
            tempfile::Builder::new().prefix("run-").tempdir_in(store.root().join("tmp")).map_err(|e| err(&text, e))?;
        let run = RunStep { layers, dir: work.path().to_path_buf(), args: args.clone(), config };
        let code = runner(&run).map_err(|e| err(&text, e))?;
        if code != 0 {
            return Err(err(
                &text,
                format!("process {:?} did not complete successfully: exit code: {code}", args.join(" ")),
            ));
        }
        write_upper_layer(&work.path().join("upper"), std::io::BufWriter::new(tmp)).map_err(|e| err(&text, e))
    })
}

/// Add the layer of cache `key` to the stage: the cached one when the store still has it, else
/// the one `make` writes (into a temporary file), imported and remembered under `key`.
fn add_layer(
    ctx: &StepContext<'_>,
    st: &mut Stage,
    key: &str,
    text: &str,
    step: Step,
    log: &mut dyn FnMut(&str),
    make: impl FnOnce(&mut fs::File) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    let StepContext { store, cache_dir, .. } = *ctx;
    let cache_file = cache_dir.join(key);
    let cached: Option<CachedLayer> = fs::read(&cache_file).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let cached = cached.filter(|c| skiff_image::store::digest_of(&c.layer).is_ok_and(|d| store.has_blob(&d)));
    let (layer, diff_id) = match cached {
        Some(c) => {
            log(&format!("{step} {text} (cached)"));
            (c.layer, Digest::parse(&c.diff_id).ok_or_else(|| err(text, "corrupt cache entry"))?)
        }
        None => {
            log(&format!("{step} {text}"));
            let mut tmp = tempfile::tempfile_in(store.root().join("tmp")).map_err(|e| err(text, e))?;
            make(&mut tmp)?;
            tmp.seek(std::io::SeekFrom::Start(0)).map_err(|e| err(text, e))?;
            let (layer, diff_id) = import_layer(store, std::io::BufReader::new(tmp))?;
            let entry = CachedLayer { layer: layer.clone(), diff_id: diff_id.to_string() };
            let json = serde_json::to_vec(&entry).map_err(|e| err(text, e))?;
            skiff_image::store::write_atomic(&store.root().join("tmp"), &cache_file, &json)?;
            (layer, diff_id)
        }
    };
    st.layers.push(layer);
    st.diff_ids.push(diff_id);
    st.record(text, false)
}

fn flags_text(flags: &[parse_dockerfile::Flag<'_>]) -> String {
    flags
        .iter()
        .map(|f| match &f.value {
            Some(v) => format!("--{}={} ", f.name.value, v.value),
            None => format!("--{} ", f.name.value),
        })
        .collect()
}

fn sources_text(srcs: &[Source<'_>], dest: &str) -> String {
    let mut parts: Vec<String> = srcs
        .iter()
        .map(|s| match s {
            Source::Path(p) => p.value.to_string(),
            _ => "<heredoc>".into(),
        })
        .collect();
    parts.push(dest.to_string());
    parts.join(" ")
}

/// The instruction as Dockerfile text, for history and substitution.
fn instruction_text(ins: &Instruction<'_>) -> String {
    use parse_dockerfile::Command;
    let cmd = |c: &Command<'_>| match c {
        Command::Exec(items) => {
            serde_json::to_string(&items.value.iter().map(|s| s.value.to_string()).collect::<Vec<_>>())
                .unwrap_or_default()
        }
        Command::Shell(s) => s.value.to_string(),
        _ => String::new(),
    };
    match ins {
        Instruction::Cmd(c) => format!("CMD {}", cmd(&c.arguments)),
        Instruction::Entrypoint(e) => format!("ENTRYPOINT {}", cmd(&e.arguments)),
        Instruction::Env(e) => format!("ENV {}", e.arguments.value),
        Instruction::Label(l) => format!("LABEL {}", l.arguments.value),
        Instruction::Expose(e) => {
            format!("EXPOSE {}", e.arguments.iter().map(|a| a.value.to_string()).collect::<Vec<_>>().join(" "))
        }
        Instruction::User(u) => format!("USER {}", u.arguments.value),
        Instruction::Workdir(w) => format!("WORKDIR {}", w.arguments.value),
        Instruction::Stopsignal(s) => format!("STOPSIGNAL {}", s.arguments.value),
        Instruction::Volume(v) => match &v.arguments {
            parse_dockerfile::JsonOrStringArray::Json(items) => {
                format!(
                    "VOLUME {}",
                    serde_json::to_string(&items.value.iter().map(|s| s.value.to_string()).collect::<Vec<_>>())
                        .unwrap_or_default()
                )
            }
            parse_dockerfile::JsonOrStringArray::String(items) => {
                format!("VOLUME {}", items.iter().map(|s| s.value.to_string()).collect::<Vec<_>>().join(" "))
            }
        },
        Instruction::Shell(_) => "SHELL".into(),
        Instruction::Onbuild(_) => "ONBUILD".into(),
        other => format!("{other:?}").split('(').next().unwrap_or("").to_uppercase(),
    }
}

#[allow(clippy::too_many_arguments)]
fn layer_step(
    ctx: &StepContext<'_>,
    st: &mut Stage,
    options: &[parse_dockerfile::Flag<'_>],
    srcs: &[Source<'_>],
    dest: &str,
    is_add: bool,
    text: &str,
    step: Step,
    log: &mut dyn FnMut(&str),
) -> Result<(), BuildError> {
    let StepContext { store, opts, done, ignore, empty_dir, .. } = *ctx;
    let text = expand(text, &st.vars).map_err(|e| err(text, e))?;
    let mut spec = CopySpec {
        dest: expand(dest, &st.vars).map_err(|e| err(&text, e))?,
        chown: None,
        chmod: None,
        extract: is_add,
    };
    let mut from: Option<String> = None;
    for f in options {
        let v = f.value.as_ref().map(|v| v.value.to_string()).unwrap_or_default();
        match f.name.value.as_ref() {
            "from" if !is_add => from = Some(v),
            "chown" => spec.chown = Some(parse_chown(&v, &text, &st.base_dirs)?),
            "chmod" => {
                spec.chmod = Some(
                    u32::from_str_radix(&v, 8)
                        .map_err(|_| err(&text, format!("--chmod={v}: expected an octal mode")))?,
                )
            }
            "link" => {}
            other => return Err(err(&text, format!("unknown flag --{other}"))),
        }
    }
    // Where sources come from: the context, or a stage/image's filesystem.
    let view = match &from {
        None => None,
        Some(name) => {
            let img = match done.iter().find(|(n, _)| n.as_deref() == Some(name.to_lowercase().as_str())) {
                Some((_, img)) => img.clone(),
                None => match name.parse::<usize>().ok().and_then(|i| done.get(i)) {
                    Some((_, img)) => img.clone(),
                    None => {
                        let r = Reference::parse(name).map_err(|e| err(&text, format!("--from={name}: {e}")))?;
                        store
                            .image(&r)
                            .map_err(|_| err(&text, format!("--from={name}: no stage or local image by that name")))?
                    }
                },
            };
            let dirs = store.unpack(&img)?;
            Some(RootView::new(&dirs, empty_dir).map_err(|e| err(&text, e))?)
        }
    };
    let (root, keep_owner, context_root) = match &view {
        Some(v) => (v.path.clone(), true, None),
        None => (opts.context.clone(), false, Some(opts.context.clone())),
    };
    let no_ignore = Ignore::default();
    let ig = if context_root.is_some() { ignore } else { &no_ignore };
    let mut sources = Vec::new();
    for s in srcs {
        let Source::Path(p) = s else { return Err(err(&text, "here-documents are not supported yet")) };
        let p = expand(&p.value, &st.vars).map_err(|e| err(&text, e))?;
        if p.starts_with("http://") || p.starts_with("https://") {
            return Err(err(
                &text,
                "ADD from a URL needs network access: download the file into the build context and COPY it",
            ));
        }
        for path in resolve_sources(&root, &p, ig).map_err(|e| err(&text, e))? {
            sources.push(Src { path, keep_owner, context_root: context_root.clone() });
        }
    }
    let fp = fingerprint(&sources, ig).map_err(|e| err(&text, e))?;
    let workdir = st.workdir();
    let key = st.next_key(&format!("{text} chown={:?} chmod={:?} workdir={workdir}", spec.chown, spec.chmod), &fp);
    let base_dirs = st.base_dirs.clone();
    add_layer(ctx, st, &key, &text, step, log, |tmp| {
        write_layer(std::io::BufWriter::new(tmp), &sources, &spec, &workdir, &base_dirs, ig).map_err(|e| err(&text, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_names_resolve_in_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("etc")).expect("etc");
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nspring:x:1001:1002::/home/spring:/bin/sh\n",
        )
        .expect("passwd");
        fs::write(dir.path().join("etc/group"), "root:x:0:\nspring:x:1002:\nweb:x:33:\n").expect("group");
        let layers = vec![dir.path().to_path_buf()];
        assert_eq!(parse_chown("spring", "COPY", &layers).expect("user"), (1001, 1002));
        assert_eq!(parse_chown("spring:web", "COPY", &layers).expect("user:group"), (1001, 33));
        assert_eq!(parse_chown("1000", "COPY", &layers).expect("uid"), (1000, 1000));
        assert_eq!(parse_chown("1000:spring", "COPY", &layers).expect("uid:group"), (1000, 1002));
        assert!(parse_chown("nobody", "COPY", &layers).is_err());
    }
}
