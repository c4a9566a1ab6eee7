//! The image commands: images, tag, rmi, import, image inspect.

use anyhow::{Context, bail};
use skiff_build::run::RunError;
use skiff_image::{ImageStore, Reference, report};
use std::path::Path;

pub fn open(data_dir: &Path) -> anyhow::Result<ImageStore> {
    let root = data_dir.join("images");
    ImageStore::open(&root).with_context(|| format!("opening the image store at {}", root.display()))
}

fn parse(r: &str) -> anyhow::Result<Reference> {
    Reference::parse(r).with_context(|| format!("{r:?}"))
}

pub fn list(data_dir: &Path) -> anyhow::Result<()> {
    super::print(&report::images_table(&open(data_dir)?, jiff::Timestamp::now())?);
    Ok(())
}

pub fn tag(data_dir: &Path, src: &str, dst: &str) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let (src, dst) = (parse(src)?, parse(dst)?);
    let desc = store.resolve(&src)?.with_context(|| format!("no such image: {src}"))?;
    store.tag(&dst, &desc)?;
    Ok(())
}

pub fn rmi(data_dir: &Path, refs: &[String]) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let mut missing = Vec::new();
    for r in refs {
        let reference = parse(r)?;
        if store.untag(&reference)? {
            let tag = reference.tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
            super::print(&format!("Untagged: {}{tag}\n", reference.familiar_name()));
        } else {
            missing.push(r.clone());
        }
    }
    if !missing.is_empty() {
        bail!("No such image: {}", missing.join(", "));
    }
    Ok(())
}

pub fn import(data_dir: &Path, source: &str, reference: &str, changes: &[String]) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let _lease = store.writer_lease()?;
    let reference = parse(reference)?;
    let image = if source == "-" {
        skiff_build::import_rootfs(&store, std::io::stdin().lock(), "-", &[reference], changes)?
    } else {
        let file = std::fs::File::open(source).with_context(|| format!("opening {source}"))?;
        skiff_build::import_rootfs(&store, std::io::BufReader::new(file), source, &[reference], changes)?
    };
    super::print(&format!("{}\n", image.id()));
    Ok(())
}

pub fn inspect(data_dir: &Path, refs: &[String]) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let mut out = Vec::new();
    for r in refs {
        let image = store.image(&parse(r)?)?;
        out.push(report::inspect(&store, &image)?);
    }
    super::print(&format!("{}\n", serde_json::to_string_pretty(&out)?));
    Ok(())
}

pub fn save(data_dir: &Path, refs: &[String], output: Option<&Path>) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let mut images = Vec::new();
    for r in refs {
        let reference = parse(r)?;
        let image = store.image(&reference)?;
        images.push((reference, image));
    }
    match output {
        Some(path) => {
            // Write next to the target and rename, so a failed save leaves no half archive.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("writing {}", path.display()))?;
            skiff_image::archive::save(&store, &images, std::io::BufWriter::new(tmp.as_file()))?;
            tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("refusing to write an image archive to a terminal: use -o FILE or redirect stdout");
            }
            skiff_image::archive::save(&store, &images, std::io::stdout().lock())?;
        }
    }
    Ok(())
}

pub fn load(data_dir: &Path, input: Option<&Path>) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let _lease = store.writer_lease()?;
    let loaded = match input {
        Some(path) => {
            let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            skiff_image::archive::load(&store, std::io::BufReader::new(f))?
        }
        None => skiff_image::archive::load(&store, std::io::stdin().lock())?,
    };
    for l in loaded {
        super::print(&format!("Loaded image: {l}\n"));
    }
    Ok(())
}

fn transport(data_dir: &Path) -> anyhow::Result<skiff_image::registry::Transport> {
    let registries = skiff_image::registries::Registries::load(&data_dir.join("registries.yaml"))?;
    Ok(skiff_image::registry::Transport::new(registries))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

pub fn pull(data_dir: &Path, reference: &str) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let _lease = store.writer_lease()?;
    let reference = parse(reference)?;
    let transport = transport(data_dir)?;
    let progress = super::progress::for_stderr();
    let image = runtime()?.block_on(skiff_image::registry::pull(&store, &transport, &reference, progress.as_ref()))?;
    super::print(&format!("Digest: {}\nStatus: image is up to date for {reference}\n", image.manifest_digest));
    Ok(())
}

pub fn push(data_dir: &Path, reference: &str, insecure: bool) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let reference = parse(reference)?;
    let transport = transport(data_dir)?;
    let digest = runtime()?.block_on(skiff_image::registry::push(&store, &transport, &reference, insecure))?;
    super::print(&format!("{}: digest: {digest}\n", reference.tag.clone().unwrap_or_default()));
    Ok(())
}

pub struct BuildArgs<'a> {
    pub context: &'a Path,
    pub dockerfile: Option<&'a Path>,
    pub tags: &'a [String],
    pub build_args: &'a [String],
    pub target: Option<&'a str>,
}

pub fn build(data_dir: &Path, args: BuildArgs<'_>) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let _lease = store.writer_lease()?;
    let tags = args.tags.iter().map(|t| parse(t)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut build_args = std::collections::HashMap::new();
    for a in args.build_args {
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            // Docker: `--build-arg NAME` takes the value from the environment.
            None => (a.clone(), std::env::var(a).unwrap_or_default()),
        };
        build_args.insert(k, v);
    }
    let opts = skiff_build::BuildOptions {
        context: args.context.to_path_buf(),
        dockerfile: args.dockerfile.map(Path::to_path_buf),
        tags,
        build_args,
        target: args.target.map(String::from),
    };
    let transport = transport(data_dir)?;
    let rt = runtime()?;
    let progress = super::progress::for_stderr();
    let fetch = |r: &Reference| rt.block_on(skiff_image::registry::pull(&store, &transport, r, progress.as_ref()));
    let exe = std::env::current_exe().context("finding the skiff binary")?;
    let runner = |step: &skiff_build::RunStep| run_build_step(&exe, step);
    let started = std::time::Instant::now();
    let image = skiff_build::build(&store, &opts, &fetch, &runner, &mut |line| eprintln!("{line}"))?;
    eprintln!("Built {} in {:.2}s", image.id(), started.elapsed().as_secs_f64());
    for t in &opts.tags {
        eprintln!("Tagged {t}");
    }
    super::print(&format!("{}\n", image.id()));
    Ok(())
}

pub fn prune(data_dir: &Path) -> anyhow::Result<()> {
    let report = open(data_dir)?.prune()?;
    super::print(&format!(
        "Deleted {} blobs, {} snapshots and {} build-cache entries\nTotal reclaimed space: {}\n",
        report.blobs,
        report.snapshots,
        report.cache_entries,
        report::human_size(report.bytes)
    ));
    Ok(())
}

/// Run one RUN step in a process of its own (`skiff build-step`), with the build's terminal as
/// the step's output; its exit code comes back through `result.json` in the step's directory.
fn run_build_step(exe: &Path, step: &skiff_build::RunStep) -> Result<i32, RunError> {
    let file = step.dir.join("step.json");
    let json = serde_json::to_vec(step)?;
    std::fs::write(&file, json).map_err(|source| RunError::Write { path: file.clone(), source })?;
    let status = std::process::Command::new(exe)
        .arg("build-step")
        .arg(&file)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(RunError::Start)?;
    let result: serde_json::Value = std::fs::read(step.dir.join("result.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(RunError::NoResult(status))?;
    match (result["exitCode"].as_i64(), result["error"].as_str()) {
        (Some(code), _) => Ok(code as i32),
        (None, Some(e)) => Err(RunError::Runtime(e.to_string())),
        _ => Err(RunError::NoResult(status)),
    }
}

/// `skiff build-step FILE`: run the step described in FILE and record how it ended.
pub fn build_step(file: &Path) -> anyhow::Result<()> {
    let step: skiff_build::RunStep =
        serde_json::from_slice(&std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)?;
    let result = match skiff_node::shim::build_step::run(&step.layers, &step.dir, &step.args, &step.config) {
        Ok(code) => serde_json::json!({ "exitCode": code }),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    std::fs::write(step.dir.join("result.json"), result.to_string())?;
    Ok(())
}
