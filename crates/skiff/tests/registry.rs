//! Registry pull and push against a real registry on loopback (Debian's docker-registry), with
//! skopeo as the independent oracle: images skopeo pushes (Docker v2s2 and OCI) are pulled and
//! unpacked by skiff with the original file tree; images skiff pushes are read back by skopeo.

mod common;

use common::registry::{Registry, free_port, mirror_config};
use common::{busybox_rootfs, skiff};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Relative paths with type and size, sorted: what "identical file trees" compares.
fn tree(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p.strip_prefix(base).expect("prefix").display().to_string();
            let md = std::fs::symlink_metadata(&p).expect("meta");
            if md.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", std::fs::read_link(&p).expect("link").display()));
            } else if md.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &p, out);
            } else {
                out.push(format!("{rel} {}", md.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().expect("skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pulls_what_skopeo_pushed_and_skopeo_reads_what_skiff_pushed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rootfs, tar) = busybox_rootfs(dir.path());
    let src = dir.path().join("src");
    let (code, _, err) = skiff(&src, &["import", tar.to_str().expect("utf8"), "busybox:local", "-c", "CMD [\"sh\"]"]);
    assert_eq!(code, 0, "{err}");
    let archive = dir.path().join("bb.tar");
    assert_eq!(skiff(&src, &["save", "busybox:local", "-o", archive.to_str().expect("utf8")]).0, 0);

    let registry = Registry::start(None);
    let h = registry.host.clone();
    for format in ["v2s2", "oci"] {
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--format",
            format,
            &format!("docker-archive:{}", archive.display()),
            &format!("docker://{h}/library/busybox:{format}"),
        ]);
    }

    let data = dir.path().join("node");
    mirror_config(&data, &registry, "");
    for (reference, tag) in [(format!("{h}/library/busybox:v2s2"), "v2s2"), ("busybox:oci".to_string(), "oci")] {
        let (code, out, err) = skiff(&data, &["pull", &reference]);
        assert_eq!(code, 0, "pull {reference}: {err}");
        assert!(out.starts_with("Digest: sha256:"), "{out}");
        let store = skiff_image::ImageStore::open(&data.join("images")).expect("store");
        let img = store.image(&skiff_image::Reference::parse(&reference).expect("ref")).expect("pulled image");
        let layers = store.unpack(&img).expect("unpack");
        assert_eq!(layers.len(), 1);
        assert_eq!(tree(&layers[0]), tree(&rootfs), "{tag}: unpacked tree equals the original rootfs");
    }
    // A second pull finds every blob present.
    assert_eq!(skiff(&data, &["pull", "busybox:oci"]).0, 0);

    // Push: skopeo reads the config back.
    let (code, _, err) = skiff(&src, &["tag", "busybox:local", &format!("{h}/pushed/bb:v1")]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = skiff(&src, &["push", &format!("{h}/pushed/bb:v1"), "--insecure"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("v1: digest: sha256:"), "{out}");
    let config: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--config",
        &format!("docker://{h}/pushed/bb:v1"),
    ]))
    .expect("json");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));

    // Errors read as containerd's; nothing is tagged.
    let (code, _, err) = skiff(&data, &["pull", &format!("{h}/library/busybox:nope")]);
    assert_eq!(code, 1);
    let r = format!("{h}/library/busybox:nope");
    assert_eq!(
        err.trim(),
        format!("error: failed to pull and unpack image {r:?}: failed to resolve reference {r:?}: {r}: not found")
    );
    let dead = format!("127.0.0.1:{}", free_port());
    let (code, _, err) = skiff(&data, &["pull", &format!("{dead}/x:1")]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("dial tcp {dead}: connect: connection refused")), "{err}");
}

/// Loopback registries are plain HTTP without `--insecure`, as Docker and containerd treat
/// them, by address and by the name `localhost`.
#[test]
fn loopback_registries_need_no_insecure_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rootfs, tar) = busybox_rootfs(dir.path());
    let registry = Registry::start(None);
    let port = registry.host.rsplit(':').next().expect("port").to_string();
    let src = dir.path().join("src");
    let node = dir.path().join("node");
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let reference = format!("{host}/plain/bb:1");
        let (code, _, err) = skiff(&src, &["import", tar.to_str().expect("utf8"), &reference]);
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = skiff(&src, &["push", &reference]);
        assert_eq!(code, 0, "push {reference}: {err}");
        assert!(out.starts_with("1: digest: sha256:"), "{out}");
        let (code, out, err) = skiff(&node, &["pull", &reference]);
        assert_eq!(code, 0, "pull {reference}: {err}");
        assert!(out.starts_with("Digest: sha256:"), "{out}");
        let store = skiff_image::ImageStore::open(&node.join("images")).expect("store");
        let img = store.image(&skiff_image::Reference::parse(&reference).expect("ref")).expect("pulled");
        assert_eq!(tree(&store.unpack(&img).expect("unpack")[0]), tree(&rootfs));
    }
    // `--insecure` still works, and a missing repository is worded as containerd words it.
    let (code, _, err) = skiff(&src, &["push", &format!("127.0.0.1:{port}/plain/bb:1"), "--insecure"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = skiff(&node, &["pull", &format!("localhost:{port}/absent/app")]);
    assert_eq!(code, 1);
    let r = format!("localhost:{port}/absent/app:latest");
    assert!(err.contains(&format!("failed to resolve reference {r:?}: {r}: not found")), "{err}");
}

#[test]
fn basic_auth_from_registries_yaml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, tar) = busybox_rootfs(dir.path());
    let registry = Registry::start(Some(("skiff", "s3cret")));
    let h = registry.host.clone();
    let src = dir.path().join("src");
    assert_eq!(skiff(&src, &["import", tar.to_str().expect("utf8"), &format!("{h}/private/bb:1")]).0, 0);

    // Without credentials the push is refused with the registry's answer and what to do.
    let (code, _, err) = skiff(&src, &["push", &format!("{h}/private/bb:1"), "--insecure"]);
    assert_eq!(code, 1);
    assert!(err.contains("push access denied") && err.contains("unauthorized (HTTP 401)"), "{err}");
    assert!(err.contains(&format!("configs.\"{h}\".auth")), "{err}");

    let creds = format!("configs:\n  \"{h}\":\n    auth:\n      username: skiff\n      password: s3cret\n");
    mirror_config(&src, &registry, &creds);
    let (code, _, err) = skiff(&src, &["push", &format!("{h}/private/bb:1"), "--insecure"]);
    assert_eq!(code, 0, "{err}");

    let node = dir.path().join("node");
    mirror_config(&node, &registry, "");
    let (code, _, err) = skiff(&node, &["pull", &format!("{h}/private/bb:1")]);
    assert_eq!(code, 1, "anonymous pull of a private image must fail");
    assert!(
        err.contains("pull access denied, repository does not exist or may require authorization: unauthorized"),
        "{err}"
    );
    mirror_config(&node, &registry, &creds);
    let (code, _, err) = skiff(&node, &["pull", &format!("{h}/private/bb:1")]);
    assert_eq!(code, 0, "{err}");
}

/// An interrupted download resumes where it stopped (HTTP range request), and the result is
/// verified as a whole.
#[test]
fn interrupted_layer_downloads_resume() {
    use skiff_image::registry::{Progress, Transport, pull};
    use std::sync::Mutex;

    struct Offsets(Mutex<Vec<u64>>);
    impl Progress for Offsets {
        fn start(&self, _digest: &str, _size: u64, offset: u64) {
            self.0.lock().expect("lock").push(offset);
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let (_, tar) = busybox_rootfs(dir.path());
    let registry = Registry::start(None);
    let h = registry.host.clone();
    let src = dir.path().join("src");
    let reference = format!("{h}/resume/bb:1");
    assert_eq!(skiff(&src, &["import", tar.to_str().expect("utf8"), &reference]).0, 0);
    assert_eq!(skiff(&src, &["push", &reference, "--insecure"]).0, 0);

    let src_store = skiff_image::ImageStore::open(&src.join("images")).expect("store");
    let r = skiff_image::Reference::parse(&reference).expect("ref");
    let img = src_store.image(&r).expect("image");
    let layer = skiff_image::store::digest_of(&img.manifest.layers()[0]).expect("digest");
    let whole = std::fs::read(src_store.blob_path(&layer)).expect("layer");

    // A node whose earlier pull stopped half way through the layer.
    let node = dir.path().join("node");
    mirror_config(&node, &registry, "");
    let store = skiff_image::ImageStore::open(&node.join("images")).expect("store");
    let half = whole.len() / 2;
    std::fs::write(node.join(format!("images/tmp/partial-{}", layer.hex())), &whole[..half]).expect("partial");

    let registries = skiff_image::registries::Registries::load(&node.join("registries.yaml")).expect("registries");
    let transport = Transport::new(registries);
    let offsets = Offsets(Mutex::new(Vec::new()));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pulled = rt.block_on(pull(&store, &transport, &r, &offsets)).expect("pull");
    assert!(offsets.0.lock().expect("lock").contains(&(half as u64)), "the layer resumed at byte {half}");
    assert_eq!(std::fs::read(store.blob_path(&layer)).expect("blob"), whole);
    assert!(!node.join(format!("images/tmp/partial-{}", layer.hex())).exists());
    assert_eq!(pulled.manifest_digest, img.manifest_digest);

    // A corrupt partial file is detected and discarded, and the next pull starts over.
    let other = dir.path().join("other");
    mirror_config(&other, &registry, "");
    let store2 = skiff_image::ImageStore::open(&other.join("images")).expect("store");
    let mut bad = whole[..half].to_vec();
    bad[10] ^= 0xff;
    std::fs::write(other.join(format!("images/tmp/partial-{}", layer.hex())), &bad).expect("partial");
    let transport2 =
        Transport::new(skiff_image::registries::Registries::load(&other.join("registries.yaml")).expect("registries"));
    let quiet = skiff_image::registry::Quiet;
    assert!(rt.block_on(pull(&store2, &transport2, &r, &quiet)).is_err(), "corrupt resume is caught");
    assert!(rt.block_on(pull(&store2, &transport2, &r, &quiet)).is_ok(), "and the retry succeeds");
}

/// A multi-platform index resolves to this node's platform, and `FROM` an image that only the
/// registry has pulls it during the build.
#[test]
fn multi_platform_index_and_build_from_a_registry_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, tar) = busybox_rootfs(dir.path());
    let registry = Registry::start(None);
    let h = registry.host.clone();
    let src = dir.path().join("src");
    let single = format!("{h}/multi/bb:single");
    assert_eq!(skiff(&src, &["import", tar.to_str().expect("utf8"), &single, "-c", "CMD [\"sh\"]"]).0, 0);
    let (code, out, err) = skiff(&src, &["push", &single, "--insecure"]);
    assert_eq!(code, 0, "{err}");
    let digest = out.trim().rsplit(' ').next().expect("digest").to_string();
    let store = skiff_image::ImageStore::open(&src.join("images")).expect("store");
    let manifest_len = std::fs::metadata(store.blob_path(&skiff_image::Digest::parse(&digest).expect("digest")))
        .expect("manifest")
        .len();
    let arch = skiff_image::layer::platform_arch();
    let other_arch = if arch == "amd64" { "arm64" } else { "amd64" };
    // The other platform's entry: another real image (the registry checks that entries exist).
    let decoy = format!("{h}/multi/bb:decoy");
    assert_eq!(skiff(&src, &["import", tar.to_str().expect("utf8"), &decoy, "-c", "CMD [\"decoy\"]"]).0, 0);
    let (code, out, err) = skiff(&src, &["push", &decoy, "--insecure"]);
    assert_eq!(code, 0, "{err}");
    let bogus = out.trim().rsplit(' ').next().expect("digest").to_string();
    let bogus_len =
        std::fs::metadata(store.blob_path(&skiff_image::Digest::parse(&bogus).expect("digest"))).expect("m").len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": bogus, "size": bogus_len, "platform": {"architecture": other_arch, "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": manifest_len, "platform": {"architecture": arch, "os": "linux"}}
        ]
    });
    let put = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
            &index.to_string(),
        ])
        .arg(format!("http://{h}/v2/multi/bb/manifests/multi"))
        .status()
        .expect("curl");
    assert!(put.success(), "index pushed");

    let node = dir.path().join("node");
    mirror_config(&node, &registry, "");
    let (code, out, err) = skiff(&node, &["pull", &format!("{h}/multi/bb:multi")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&digest), "the {arch} manifest was chosen: {out}");

    // FROM an image the store does not have: the build pulls it through the mirror config.
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {h}/multi/bb:single\nENV PULLED=yes\n")).expect("Dockerfile");
    let fresh = dir.path().join("fresh");
    mirror_config(&fresh, &registry, "");
    let (code, _, err) = skiff(&fresh, &["build", "-t", "built:1", ctx.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    let (_, images, _) = skiff(&fresh, &["images"]);
    assert!(images.contains("multi/bb") && images.contains("built "), "{images}");
}

/// TLS settings from registries.yaml: a private CA (`ca_file`) or `insecure_skip_verify`.
#[test]
fn tls_registries_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, tar) = busybox_rootfs(dir.path());
    let registry = Registry::start_with(None, true);
    let h = registry.host.clone();
    let ca = registry.dir.path().join("ca.pem");
    let src = dir.path().join("src");
    let reference = format!("{h}/tls/bb:1");
    assert_eq!(skiff(&src, &["import", tar.to_str().expect("utf8"), &reference]).0, 0);

    // A loopback registry is plain HTTP unless registries.yaml has TLS settings for it: the
    // error says it speaks HTTPS and what to configure.
    let (code, _, err) = skiff(&src, &["push", &reference]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("{h} speaks HTTPS, not plain HTTP")), "{err}");
    // Unknown CA: refused.
    std::fs::write(src.join("registries.yaml"), format!("configs:\n  \"{h}\":\n    tls: {{}}\n")).expect("yaml");
    let (code, _, err) = skiff(&src, &["push", &reference]);
    assert_eq!(code, 1);
    assert!(err.contains("x509: certificate signed by unknown authority"), "{err}");

    std::fs::write(
        src.join("registries.yaml"),
        format!("configs:\n  \"{h}\":\n    tls:\n      ca_file: {}\n", ca.display()),
    )
    .expect("yaml");
    let (code, _, err) = skiff(&src, &["push", &reference]);
    assert_eq!(code, 0, "{err}");

    let node = dir.path().join("node");
    std::fs::create_dir_all(&node).expect("mkdir");
    let (code, _, _) = skiff(&node, &["pull", &reference]);
    assert_eq!(code, 1, "no CA configured");
    std::fs::write(
        node.join("registries.yaml"),
        format!("configs:\n  \"{h}\":\n    tls:\n      insecure_skip_verify: true\n"),
    )
    .expect("yaml");
    let (code, _, err) = skiff(&node, &["pull", &reference]);
    assert_eq!(code, 0, "{err}");
}

/// A loopback server that answers every request with `response` (or, with `None`, accepts the
/// connection and never answers).
fn fake_registry(response: Option<&'static str>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(16) {
            let Ok(mut s) = stream else { continue };
            match response {
                Some(r) => {
                    let mut buf = [0u8; 4096];
                    let _ = std::io::Read::read(&mut s, &mut buf);
                    let _ = std::io::Write::write_all(&mut s, r.as_bytes());
                }
                None => held.push(s),
            }
        }
    });
    addr.to_string()
}

#[test]
fn failing_and_hanging_registries_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let broken =
        fake_registry(Some("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops"));
    std::fs::write(
        data.join("registries.yaml"),
        format!("mirrors:\n  \"{broken}\":\n    endpoint: [\"http://{broken}\"]\n"),
    )
    .expect("yaml");
    let (code, _, err) = skiff(&data, &["pull", &format!("{broken}/app:1")]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "failed to pull and unpack image \"{broken}/app:1\": failed to resolve reference \"{broken}/app:1\": unexpected status from request to http://{broken}/v2/"
        )) && err.contains("500 Internal Server Error: oops"),
        "{err}"
    );

    // A registry that never answers: the pull gives up after the read timeout.
    let silent = fake_registry(None);
    let yaml = format!("mirrors:\n  \"{silent}\":\n    endpoint: [\"http://{silent}\"]\n");
    std::fs::write(data.join("registries.yaml"), &yaml).expect("yaml");
    let store = skiff_image::ImageStore::open(&data.join("images")).expect("store");
    let mut transport = skiff_image::registry::Transport::new(
        skiff_image::registries::Registries::load(&data.join("registries.yaml")).expect("yaml"),
    );
    transport.read_timeout = Duration::from_secs(2);
    let r = skiff_image::Reference::parse(&format!("{silent}/app:1")).expect("ref");
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let res = rt.block_on(skiff_image::registry::pull(&store, &transport, &r, &skiff_image::registry::Quiet));
    assert!(res.is_err());
    assert!(started.elapsed() < Duration::from_secs(20), "gave up in {:?}", started.elapsed());
    assert!(store.list().expect("list").is_empty(), "nothing tagged");
}
