//! End to end: Secrets at rest. The store file holds no Secret's value (sealed with AES-GCM),
//! neither while it exists nor after it is deleted; the data directory and its files are the
//! owner's only; a key rotation reseals every Secret at the next start, and they still read;
//! `identity` put first turns encryption off, and the next start unseals them.

mod common;

use common::{Server, skiff};
use std::os::unix::fs::PermissionsExt;

/// Whether `needle` occurs anywhere in the file at `path`.
fn file_holds(path: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read(path).expect("read").windows(needle.len()).any(|w| w == needle)
}

#[test]
fn secrets_are_sealed_and_keys_rotate() {
    let mut server = Server::start();
    let k = server.kubectl("1.32");
    let value = "s3cr3t-value-only-in-this-test";
    let encoded = base64_of(value);
    k.run(&["create", "secret", "generic", "db", &format!("--from-literal=password={value}")]).ok();
    k.run(&["create", "configmap", "open", "--from-literal=note=plain-config-value"]).ok();
    let store = server.data_dir().join("store.redb");
    assert!(file_holds(&store, b"plain-config-value"), "ConfigMaps are not sealed: the check can see plaintext");
    assert!(!file_holds(&store, value.as_bytes()) && !file_holds(&store, encoded.as_bytes()), "the value is sealed");
    let read = || k.run(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]).ok();
    assert_eq!(read(), encoded);

    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(server.data_dir()), 0o700);
    for f in ["store.redb", "pki/ca.key", "pki/encryption-config.yaml", "kubeconfig.yaml"] {
        assert_eq!(mode(&server.data_dir().join(f)), 0o600, "{f}");
    }

    // A rotation: the next start reseals with the new key, and the Secret still reads.
    let (code, out, err) = skiff(server.data_dir(), &["secrets-encrypt", "rotate"]);
    assert_eq!(code, 0, "{err}");
    let key = out.split_whitespace().nth(1).expect("the new key's name").to_string();
    server.kill_and_restart();
    assert_eq!(read(), encoded);
    assert!(file_holds(&store, format!("k8s:enc:aesgcm:v1:{key}:").as_bytes()), "resealed with {key}");

    k.run(&["delete", "secret", "db"]).ok();
    assert!(!file_holds(&store, value.as_bytes()) && !file_holds(&store, encoded.as_bytes()), "nor after deletion");
}

#[test]
fn identity_first_turns_encryption_off_and_the_next_start_unseals() {
    let mut server = Server::start();
    let k = server.kubectl("1.32");
    let encoded = base64_of("sealed-then-unsealed-value");
    k.run(&["create", "secret", "generic", "db", "--from-literal=password=sealed-then-unsealed-value"]).ok();
    let store = server.data_dir().join("store.redb");
    assert!(!file_holds(&store, encoded.as_bytes()), "sealed first");

    // identity first, the aesgcm key after it (upstream's way to decrypt): moved in the file.
    let config = server.data_dir().join("pki/encryption-config.yaml");
    let text = std::fs::read_to_string(&config).expect("the default configuration");
    let identity = text.lines().find(|l| l.contains("identity")).expect("an identity provider").to_string();
    let mut lines: Vec<&str> = text.lines().filter(|l| *l != identity).collect();
    let at = lines.iter().position(|l| l.trim_end().ends_with("providers:")).expect("providers") + 1;
    lines.insert(at, &identity);
    std::fs::write(&config, lines.join("\n") + "\n").expect("write");
    server.kill_and_restart();
    let read = k.run(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]).ok();
    assert_eq!(read, encoded);
    assert!(file_holds(&store, encoded.as_bytes()), "unsealed at the start");
    k.run(&["create", "secret", "generic", "new", "--from-literal=v=written-in-the-clear"]).ok();
    assert!(file_holds(&store, base64_of("written-in-the-clear").as_bytes()), "new values are written plain");
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
