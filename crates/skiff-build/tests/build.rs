//! The Dockerfile builder against a real store (root: layers are unpacked with ownership).

use skiff_build::run::RunError;
use skiff_build::{BuildOptions, build};
use skiff_image::registry::RegistryError;
use skiff_image::{Image, ImageStore, Reference};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

struct Fixture {
    _dir: tempfile::TempDir,
    store: ImageStore,
    context: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(&dir.path().join("images")).expect("store");
    // A tiny base image with a CMD, like a distro image.
    let rootfs = skiff_image::testing::tar_of(&[("etc/os-release", b"ID=test\n"), ("bin/sh", b"#!fake\n")]);
    let base = Reference::parse("base:1").expect("ref");
    skiff_build::import_rootfs(&store, &rootfs[..], "test", &[base], &[r#"CMD ["sh"]"#.to_string()])
        .expect("base image");
    let context = dir.path().join("ctx");
    std::fs::create_dir_all(&context).expect("ctx");
    Fixture { _dir: dir, store, context }
}

/// Offline: no registry endpoint to try.
fn no_fetch(r: &Reference) -> Result<Image, RegistryError> {
    Err(RegistryError::Pull { reference: r.to_string(), attempts: Vec::new() })
}

/// RUN in a real container is tested end to end with the `skiff` binary (tests/node.rs).
fn no_runtime(_: &skiff_build::RunStep) -> Result<i32, RunError> {
    Err(RunError::Runtime("no container runtime in this test".into()))
}

fn run(
    f: &Fixture,
    dockerfile: &str,
    tag: &str,
    extra: impl FnOnce(&mut BuildOptions),
) -> (Result<Image, skiff_build::BuildError>, Vec<String>) {
    std::fs::write(f.context.join("Dockerfile"), dockerfile).expect("Dockerfile");
    let mut opts = BuildOptions {
        context: f.context.clone(),
        dockerfile: None,
        tags: vec![Reference::parse(tag).expect("tag")],
        build_args: HashMap::new(),
        target: None,
    };
    extra(&mut opts);
    let mut log = Vec::new();
    let r = build(&f.store, &opts, &no_fetch, &no_runtime, &mut |l| log.push(l.to_string()));
    (r, log)
}

/// Read a file from the image's layers, top layer first (no whiteouts in these tests).
fn read(store: &ImageStore, img: &Image, path: &str) -> Option<Vec<u8>> {
    let dirs = store.unpack(img).expect("unpack");
    dirs.iter().rev().find_map(|d| std::fs::read(d.join(path)).ok())
}

fn meta(store: &ImageStore, img: &Image, path: &str) -> Option<std::fs::Metadata> {
    let dirs = store.unpack(img).expect("unpack");
    dirs.iter().rev().find_map(|d| std::fs::symlink_metadata(d.join(path)).ok())
}

fn write(dir: &Path, rel: &str, data: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

#[test]
fn multi_stage_with_copy_from_args_and_target() {
    let f = fixture();
    write(&f.context, "src/app.txt", "v1\n");
    let df = "ARG BASE=base:1\nFROM ${BASE} AS builder\nARG VERSION=0.1\nWORKDIR /work\nCOPY src/ ./\nENV VERSION=$VERSION\n\nFROM scratch AS final\nCOPY --from=builder /work/app.txt /srv/app.txt\nCOPY --from=builder /etc/os-release /etc/\nCMD [\"/srv/app\"]\n";
    let (img, _) = run(&f, df, "multi:1", |o| {
        o.build_args.insert("VERSION".into(), "2.0".into());
    });
    let img = img.expect("build");
    assert_eq!(read(&f.store, &img, "srv/app.txt").as_deref(), Some(&b"v1\n"[..]));
    assert_eq!(read(&f.store, &img, "etc/os-release").as_deref(), Some(&b"ID=test\n"[..]));
    assert!(read(&f.store, &img, "bin/sh").is_none(), "scratch stage has only what was copied");
    assert_eq!(img.config.config().as_ref().and_then(|c| c.cmd().clone()), Some(vec!["/srv/app".to_string()]));
    assert_eq!(img.config.rootfs().diff_ids().len(), 2);
    let history = img.config.history().clone().unwrap_or_default();
    assert!(
        history.iter().any(|h| h.created_by().as_deref() == Some("COPY --from=builder /work/app.txt /srv/app.txt"))
    );

    let (img, _) = run(&f, df, "multi:builder", |o| {
        o.target = Some("builder".into());
        o.build_args.insert("VERSION".into(), "2.0".into());
    });
    let img = img.expect("target build");
    let cfg = img.config.config().clone().unwrap_or_default();
    assert_eq!(cfg.working_dir().as_deref(), Some("/work"));
    assert!(cfg.env().clone().unwrap_or_default().contains(&"VERSION=2.0".to_string()));
    assert_eq!(read(&f.store, &img, "work/app.txt").as_deref(), Some(&b"v1\n"[..]));
    assert!(read(&f.store, &img, "bin/sh").is_some(), "based on base:1");
}

#[test]
fn unchanged_steps_are_cached_and_a_change_rebuilds_from_there() {
    let f = fixture();
    write(&f.context, "a.txt", "a");
    write(&f.context, "b.txt", "b");
    let df = "FROM base:1\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n";
    let (first, log1) = run(&f, df, "cache:1", |_| {});
    let first = first.expect("build 1");
    assert!(!log1.iter().any(|l| l.ends_with("(cached)")));
    let (second, log2) = run(&f, df, "cache:1", |_| {});
    let second = second.expect("build 2");
    assert_eq!(log2.iter().filter(|l| l.ends_with("(cached)")).count(), 2, "{log2:?}");
    assert_eq!(first.manifest.layers(), second.manifest.layers(), "every layer reused");
    write(&f.context, "b.txt", "changed");
    let (third, log3) = run(&f, df, "cache:1", |_| {});
    let third = third.expect("build 3");
    assert!(log3.iter().any(|l| l.contains("COPY a.txt /a.txt (cached)")));
    assert!(log3.iter().any(|l| l == "[3/3] COPY b.txt /b.txt"), "{log3:?}");
    assert_eq!(read(&f.store, &third, "b.txt").as_deref(), Some(&b"changed"[..]));
}

#[test]
fn entrypoint_and_cmd_follow_docker_rules() {
    let f = fixture();
    // (Dockerfile tail, expected entrypoint, expected cmd); the base image has CMD ["sh"].
    type Case<'a> = (&'a str, Option<Vec<&'a str>>, Option<Vec<&'a str>>);
    let cases: &[Case] = &[
        ("", None, Some(vec!["sh"])),
        ("CMD [\"echo\", \"hi\"]", None, Some(vec!["echo", "hi"])),
        ("CMD echo hi", None, Some(vec!["/bin/sh", "-c", "echo hi"])),
        ("ENTRYPOINT [\"/app\"]", Some(vec!["/app"]), None),
        ("ENTRYPOINT [\"/app\"]\nCMD [\"--port\", \"80\"]", Some(vec!["/app"]), Some(vec!["--port", "80"])),
        ("CMD [\"--port\", \"80\"]\nENTRYPOINT [\"/app\"]", Some(vec!["/app"]), None),
        ("ENTRYPOINT /app --serve", Some(vec!["/bin/sh", "-c", "/app --serve"]), None),
    ];
    for (i, (tail, ep, cmd)) in cases.iter().enumerate() {
        let (img, _) = run(&f, &format!("FROM base:1\n{tail}\n"), &format!("ep:{i}"), |_| {});
        let cfg = img.expect("build").config.config().clone().unwrap_or_default();
        let owned = |v: &Option<Vec<&str>>| v.as_ref().map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(cfg.entrypoint().clone(), owned(ep), "case {i}: {tail}");
        assert_eq!(cfg.cmd().clone(), owned(cmd), "case {i}: {tail}");
    }
}

#[test]
fn add_extracts_tars_copy_honours_dockerignore_chown_and_chmod() {
    let f = fixture();
    let tarball = skiff_image::testing::tar_of(&[("pkg/readme", b"hello")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tarball).expect("gz");
    std::fs::write(f.context.join("vendor.tar.gz"), gz.finish().expect("gz")).expect("write");
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    std::io::Write::write_all(&mut bz, &tarball).expect("bz2");
    std::fs::write(f.context.join("more.tar.bz2"), bz.finish().expect("bz2")).expect("write");
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &tarball[..], &mut xz).expect("xz");
    std::fs::write(f.context.join("xz.tar.xz"), xz).expect("write");
    // A compressed file that is not a tar is copied as it is.
    let mut plain = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut plain, b"just text").expect("gz");
    std::fs::write(f.context.join("notes.gz"), plain.finish().expect("gz")).expect("write");
    write(&f.context, "app/main.sh", "echo main");
    write(&f.context, "app/debug.log", "noise");
    write(&f.context, ".dockerignore", "app/*.log\n");
    let df = "FROM base:1\nADD vendor.tar.gz /opt/\nADD more.tar.bz2 /bz/\nADD xz.tar.xz /xz/\nADD notes.gz /notes/\nCOPY --chown=1000:1000 --chmod=750 app /app\n";
    let (img, _) = run(&f, df, "add:1", |_| {});
    let img = img.expect("build");
    assert_eq!(read(&f.store, &img, "opt/pkg/readme").as_deref(), Some(&b"hello"[..]), "ADD extracted the tarball");
    assert!(read(&f.store, &img, "opt/vendor.tar.gz").is_none());
    assert_eq!(read(&f.store, &img, "bz/pkg/readme").as_deref(), Some(&b"hello"[..]), "bzip2");
    assert_eq!(read(&f.store, &img, "xz/pkg/readme").as_deref(), Some(&b"hello"[..]), "xz");
    assert!(read(&f.store, &img, "notes/notes.gz").is_some(), "a gzip that is no tar is copied");
    assert_eq!(read(&f.store, &img, "app/main.sh").as_deref(), Some(&b"echo main"[..]));
    assert!(read(&f.store, &img, "app/debug.log").is_none(), ".dockerignore excluded it");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = meta(&f.store, &img, "app/main.sh").expect("meta");
    assert_eq!((m.uid(), m.gid(), m.permissions().mode() & 0o777), (1000, 1000, 0o750));
}

#[test]
fn bad_dockerfiles_fail_clearly() {
    let f = fixture();
    let cases = [
        ("FROM base:1\nFROOB x\n", "FROOB"),
        ("FROM base:1\nCOPY ../outside /x\n", "outside the build context"),
        ("FROM base:1\nCOPY missing.txt /x\n", "missing.txt: not found"),
        ("FROM base:1\nRUN echo hi\n", "RUN echo hi: no container runtime in this test"),
        ("FROM scratch\nRUN echo hi\n", "RUN needs a base image"),
        ("FROM base:1\nRUN --network=none echo hi\n", "not supported yet"),
        ("FROM nothere:1\n", "no registry endpoint to pull from"),
        ("FROM base:1\nCOPY --from=nostage /x /y\n", "nostage"),
        ("FROM base:1\nADD https://example.com/x /x\n", "needs network access"),
    ];
    for (df, want) in cases {
        let (r, _) = run(&f, df, "bad:1", |_| {});
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(want), "{df:?}: {msg}");
    }
    let (r, _) = run(&f, "FROM base:1 AS a\n", "bad:1", |o| o.target = Some("b".into()));
    assert!(r.err().map(|e| e.to_string()).unwrap_or_default().contains("target stage \"b\" could not be found"));
    assert!(f.store.resolve(&Reference::parse("bad:1").expect("ref")).expect("resolve").is_none(), "nothing tagged");
}
