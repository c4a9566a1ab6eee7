//! The image commands end to end: `skiff import` of a busybox rootfs, `images`, `tag`, `rmi`,
//! `image inspect`, and their errors.

mod common;

use common::{busybox_rootfs, skiff};
use std::process::Command;

#[test]
fn import_list_tag_inspect_and_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, tar) = busybox_rootfs(dir.path());
    let tar = tar.to_str().expect("utf8");

    let (code, out, err) =
        skiff(&data, &["import", tar, "busybox:local", "--change", r#"CMD ["sh"]"#, "-c", "ENV A=1"]);
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let (code, out, _) = skiff(&data, &["tag", "busybox:local", "spring-base"]);
    assert_eq!(code, 0, "{out}");
    let (_, table, _) = skiff(&data, &["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(
        lines.iter().any(|l| l.starts_with("busybox ") && l.contains(" local ") && l.contains(&id[7..19])),
        "{table}"
    );
    assert!(lines.iter().any(|l| l.starts_with("spring-base ") && l.contains(" latest ")), "{table}");

    let (code, json, err) = skiff(&data, &["image", "inspect", "spring-base"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(doc[0]["Id"], id.as_str());
    assert_eq!(doc[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(doc[0]["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(doc[0]["Os"], "linux");
    assert_eq!(doc[0]["RootFS"]["diff_ids"].as_array().map(Vec::len), Some(1));

    let (code, out, _) = skiff(&data, &["rmi", "spring-base"]);
    assert_eq!((code, out.trim()), (0, "Untagged: spring-base:latest"));
    let (code, _, err) = skiff(&data, &["rmi", "spring-base"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such image: spring-base"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (code, _, err) = skiff(&data, &["import", "/nonexistent.tar", "x:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.tar"), "{err}");
    let (_, tar) = busybox_rootfs(dir.path());
    let (code, _, err) = skiff(&data, &["import", tar.to_str().expect("utf8"), "x:1", "--change", "RUN echo"]);
    assert_eq!(code, 1);
    assert!(err.contains("RUN is not allowed here"), "{err}");
    let (code, _, err) = skiff(&data, &["import", tar.to_str().expect("utf8"), "Bad:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("must be lowercase"), "{err}");
    let (_, table, _) = skiff(&data, &["images"]);
    assert_eq!(table.lines().count(), 1, "only the header: {table}");
    assert_eq!(std::fs::read_dir(data.join("images/tmp")).expect("tmp").count(), 0, "no partial files");
}

/// skopeo (an independent implementation) reads what `skiff save` writes, in both formats, and
/// `skiff load` reads an OCI layout skopeo wrote.
#[test]
fn save_and_load_interoperate_with_skopeo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, tar) = busybox_rootfs(dir.path());
    let (code, id, err) = skiff(&data, &["import", tar.to_str().expect("utf8"), "busybox:local", "-c", "CMD [\"sh\"]"]);
    assert_eq!(code, 0, "{err}");
    let archive = dir.path().join("bb.tar");
    let (code, _, err) = skiff(&data, &["save", "busybox:local", "-o", archive.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");

    for transport in ["oci-archive", "docker-archive"] {
        let out = Command::new("skopeo")
            .args(["inspect", "--config", &format!("{transport}:{}", archive.display())])
            .output()
            .expect("skopeo");
        assert!(out.status.success(), "{transport}: {}", String::from_utf8_lossy(&out.stderr));
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("config json");
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]), "{transport}");
    }

    let layout = dir.path().join("layout");
    let out = Command::new("skopeo")
        .args([
            "copy",
            // Fail rather than silently rewrite: the image must come through byte for byte.
            "--preserve-digests",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:docker.io/library/copied:v2", layout.display()),
        ])
        .output()
        .expect("skopeo copy");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let layout_tar = dir.path().join("layout.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&layout_tar)
            .arg(".")
            .status()
            .expect("tar")
            .success()
    );
    let other = dir.path().join("other");
    let (code, out, err) = skiff(&other, &["load", "-i", layout_tar.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Loaded image: docker.io/library/copied:v2");
    let (_, json, _) = skiff(&other, &["image", "inspect", "copied:v2"]);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(doc[0]["Id"], id.trim(), "the config, and so the image ID, survives the round trip");
}

/// The tutorial's Spring flow, offline: a base made with `skiff import`, then
/// `skiff build -t spring-server .` with COPY and ENTRYPOINT; the image is in the store at once.
#[test]
fn tutorial_spring_build_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, tar) = busybox_rootfs(dir.path());
    let (code, _, err) = skiff(&data, &["import", tar.to_str().expect("utf8"), "busybox-base:1.0"]);
    assert_eq!(code, 0, "{err}");
    let ctx = dir.path().join("spring");
    std::fs::create_dir_all(ctx.join("build/libs")).expect("mkdir");
    std::fs::write(ctx.join("build/libs/spring-0.0.1-SNAPSHOT.jar"), vec![7u8; 1 << 20]).expect("jar");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox-base:1.0\nCOPY build/libs/*SNAPSHOT.jar /app.jar\nEXPOSE 8080\nENTRYPOINT [\"sh\", \"-c\", \"ls -l /app.jar\"]\n",
    )
    .expect("Dockerfile");
    let (code, id, err) = skiff(&data, &["build", "-t", "spring-server", ctx.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("COPY build/libs/*SNAPSHOT.jar /app.jar"), "{err}");
    let (_, table, _) = skiff(&data, &["images"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("spring-server ") && l.contains(" latest ") && l.contains(&id.trim()[7..19])),
        "{table}"
    );
    let (_, json, _) = skiff(&data, &["image", "inspect", "spring-server"]);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(doc[0]["Config"]["Entrypoint"], serde_json::json!(["sh", "-c", "ls -l /app.jar"]));
    assert_eq!(doc[0]["RootFS"]["diff_ids"].as_array().map(Vec::len), Some(2));
    // Rebuilding changes nothing: the COPY layer comes from the cache.
    let (code, _, err) = skiff(&data, &["build", "-t", "spring-server", ctx.to_str().expect("utf8")]);
    assert_eq!(code, 0);
    assert!(err.contains("(cached)"), "{err}");
}
