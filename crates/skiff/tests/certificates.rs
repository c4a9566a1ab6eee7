//! End to end, with every kubectl: user identities through the `certificates.k8s.io/v1` API. A
//! key and request made by openssl as the Kubernetes docs make them, a CertificateSigningRequest,
//! `kubectl certificate approve`, the certificate the controller manager's signer issues, and
//! `bob` acting with it; a user without `approve` on the signer is refused in upstream's
//! words; signers refuse forged groups with a `Failed` condition, and `system:masters` is no
//! client certificate's to ask for; `--cluster-signing-duration` bounds what is issued.

mod common;

use base64::Engine;
use common::{KUBECTL_VERSIONS, Kubectl, Server, eventually, skiff};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CLIENT: &str = "kubernetes.io/kube-apiserver-client";
const KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// openssl's verdict, panicking with its output when it fails.
fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl (the openssl package)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openssl {args:?}: {text}");
    text
}

/// A new P-256 key (`DIR/NAME.key`) and its request for `subject` (PEM).
fn key_and_request(dir: &Path, name: &str, subject: &str) -> (PathBuf, String) {
    let (key, csr) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.csr")));
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        &path(&key),
        "-out",
        &path(&csr),
    ]);
    (key, std::fs::read_to_string(csr).expect("read csr"))
}

fn manifest(name: &str, request: &str, signer: &str, usages: &[&str], extra: &str) -> String {
    let request = base64::engine::general_purpose::STANDARD.encode(request);
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: {request}\n  signerName: {signer}\n  usages: [{}]\n{extra}",
        usages.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ")
    )
}

/// A kubeconfig for `user` in `groups`, minted from the server's CA.
fn identity(server: &Server, user: &str, groups: &[&str]) -> PathBuf {
    let mut args = vec!["kubeconfig", "--user", user];
    for g in groups {
        args.extend(["--group", g]);
    }
    let (code, out, err) = skiff(server.data_dir(), &args);
    assert_eq!(code, 0, "skiff kubeconfig --user: {err}");
    let path = server.data_dir().join(format!("{user}.yaml"));
    std::fs::write(&path, out).expect("write kubeconfig");
    path
}

/// The admin's kubeconfig with the client certificate `cert` and key `key` instead.
fn kubeconfig_with(server: &Server, kubectl: &Kubectl, name: &str, cert: &Path, key: &Path) -> PathBuf {
    let path = server.data_dir().join(format!("{name}.yaml"));
    std::fs::copy(server.kubeconfig(), &path).expect("copy kubeconfig");
    let (cert, key) = (format!("--client-certificate={}", cert.display()), format!("--client-key={}", key.display()));
    let config = format!("--kubeconfig={}", path.display());
    kubectl.run(&[&config, "config", "set-credentials", "skiff-admin", &cert, &key, "--embed-certs=true"]).ok();
    path
}

/// The CSR's field at `jsonpath`, once it is not empty.
fn eventually_field(kubectl: &Kubectl, name: &str, jsonpath: &str) -> String {
    let mut value = String::new();
    let got = eventually(Duration::from_secs(20), || {
        value = kubectl.run(&["get", "csr", name, "-o", &format!("jsonpath={jsonpath}")]).stdout;
        !value.is_empty()
    });
    assert!(got, "{name}: {jsonpath} stayed empty:\n{}", kubectl.run(&["get", "csr", name, "-o", "yaml"]).stdout);
    value
}

#[test]
fn a_user_certificate_through_a_signing_request() {
    let server = Server::start();
    let admin = server.kubectl("1.32");
    // eve may read requests and write approvals, but approve for no signer.
    admin
        .run(&[
            "create",
            "clusterrole",
            "csr-clerk",
            "--verb=get,list,watch,update",
            "--resource=certificatesigningrequests,certificatesigningrequests/approval",
        ])
        .ok();
    admin.run(&["create", "clusterrolebinding", "eve-csr-clerk", "--clusterrole=csr-clerk", "--user=eve"]).ok();
    let eve_config = identity(&server, "eve", &[]);
    let eve32 = Kubectl::new("1.32", &eve_config, server.data_dir());
    assert!(eventually(Duration::from_secs(10), || eve32.run(&["get", "csr"]).code == 0));

    for v in KUBECTL_VERSIONS {
        let k = server.kubectl(v);
        let name = format!("bob-{}", v.replace('.', "-"));
        let (key, request) = key_and_request(server.data_dir(), &name, "/O=dev/CN=bob");
        let csr = manifest(&name, &request, CLIENT, &["client auth"], "  expirationSeconds: 3600\n");
        k.run_stdin(&["apply", "-f", "-"], &csr).ok();
        let table = k.run(&["get", "csr", &name]).ok();
        let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(header, ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"], "kubectl {v}");
        assert!(table.contains(CLIENT) && table.contains("60m") && table.contains("Pending"), "kubectl {v}:\n{table}");
        // The requestor is who created it (the admin), not what the manifest could claim.
        let requestor = k.run(&["get", "csr", &name, "-o", "jsonpath={.spec.username}"]).ok();
        assert_eq!(requestor, "skiff-admin", "kubectl {v}");

        let eve = Kubectl::new(v, &eve_config, server.data_dir());
        let refused = eve.run(&["certificate", "approve", &name]);
        let forbidden = format!(
            r#"certificatesigningrequests.certificates.k8s.io "{name}" is forbidden: user not permitted to approve requests with signerName "{CLIENT}""#
        );
        assert!(refused.code != 0 && refused.stderr.contains(&forbidden), "kubectl {v}:\n{}", refused.combined());

        let approved = k.run(&["certificate", "approve", &name]).ok();
        assert!(
            approved.contains(&format!("certificatesigningrequest.certificates.k8s.io/{name} approved")),
            "{approved}"
        );
        let issued = eventually_field(&k, &name, "{.status.certificate}");
        let cert = base64::engine::general_purpose::STANDARD.decode(issued.trim()).expect("base64");
        let cert_path = server.data_dir().join(format!("{name}.crt"));
        std::fs::write(&cert_path, &cert).expect("write certificate");
        let subject = openssl(&["x509", "-noout", "-subject", "-in", cert_path.to_str().expect("utf-8")]);
        assert_eq!(subject.trim(), "subject=O = dev, CN = bob", "kubectl {v}");
        // The hour asked for, not the year the signer would give at most.
        let path = cert_path.to_str().expect("utf-8");
        openssl(&["x509", "-noout", "-checkend", "3000", "-in", path]);
        let end = Command::new("openssl").args(["x509", "-noout", "-checkend", "3700", "-in", path]).output();
        assert!(end.is_ok_and(|o| !o.status.success()), "kubectl {v}: valid for more than the hour asked");
        let condition = k.run(&["get", "csr", &name, "--no-headers"]).ok();
        assert!(condition.contains("Approved,Issued"), "kubectl {v}: {condition}");

        // bob is who the certificate says.
        let bob = Kubectl::new(v, &kubeconfig_with(&server, &k, &name, &cert_path, &key), server.data_dir());
        let pods = bob.run(&["get", "pods"]);
        assert!(
            pods.stderr
                .contains(r#"User "bob" cannot list resource "pods" in API group "" in the namespace "default""#),
            "kubectl {v}:\n{}",
            pods.combined()
        );
        // kubectl 1.27 asks for SelfSubjectReview in v1beta1, which is not served.
        if *v != "1.27" {
            let whoami = bob.run(&["auth", "whoami"]).ok();
            assert!(whoami.contains("bob") && whoami.contains("[dev system:authenticated]"), "kubectl {v}:\n{whoami}");
        }
    }
}

#[test]
fn signers_refuse_forged_groups_and_denied_requests_stay_unsigned() {
    let server = Server::start_with(&["--cluster-signing-duration", "2h"]);
    let k = server.kubectl("1.32");
    let dir = server.data_dir();
    let kubelet_usages = ["digital signature", "key encipherment", "client auth"];

    // A kubelet client certificate that also claims system:masters: approved, then refused.
    let (_, forged) = key_and_request(dir, "forged", "/O=system:nodes/O=system:masters/CN=system:node:n1");
    k.run_stdin(&["apply", "-f", "-"], &manifest("forged", &forged, KUBELET_CLIENT, &kubelet_usages, "")).ok();
    k.run(&["certificate", "approve", "forged"]).ok();
    let reason = eventually_field(&k, "forged", r#"{.status.conditions[?(@.type=="Failed")].reason}"#);
    assert_eq!(reason, "SignerValidationFailure");
    let message =
        k.run(&["get", "csr", "forged", "-o", r#"jsonpath={.status.conditions[?(@.type=="Failed")].message}"#]).ok();
    assert_eq!(message, "subject organization is not system:nodes");
    let row = k.run(&["get", "csr", "forged", "--no-headers"]).ok();
    assert!(row.contains("Approved,Failed") && !row.contains("Issued"), "{row}");

    // A node's own request is signed.
    let (_, node) = key_and_request(dir, "node", "/O=system:nodes/CN=system:node:n1");
    k.run_stdin(&["apply", "-f", "-"], &manifest("node", &node, KUBELET_CLIENT, &kubelet_usages, "")).ok();
    k.run(&["certificate", "approve", "node"]).ok();
    let issued = eventually_field(&k, "node", "{.status.certificate}");
    // Asking for no duration, it gets --cluster-signing-duration's two hours.
    let cert = base64::engine::general_purpose::STANDARD.decode(issued.trim()).expect("base64");
    let cert_path = dir.join("node.crt");
    std::fs::write(&cert_path, &cert).expect("write certificate");
    let path = cert_path.to_str().expect("utf-8");
    openssl(&["x509", "-noout", "-checkend", "7000", "-in", path]);
    let end = Command::new("openssl").args(["x509", "-noout", "-checkend", "7300", "-in", path]).output();
    assert!(end.is_ok_and(|o| !o.status.success()), "valid past --cluster-signing-duration");

    // A denied request is never signed.
    let (_, carol) = key_and_request(dir, "carol", "/CN=carol");
    k.run_stdin(&["apply", "-f", "-"], &manifest("carol", &carol, CLIENT, &["client auth"], "")).ok();
    let denied = k.run(&["certificate", "deny", "carol"]).ok();
    assert!(denied.contains("denied"), "{denied}");
    std::thread::sleep(Duration::from_secs(2));
    let row = k.run(&["get", "csr", "carol", "--no-headers"]).ok();
    assert!(row.contains("Denied") && !row.contains("Issued"), "{row}");

    // system:masters is no client certificate's to ask for (CertificateSubjectRestriction).
    let (_, root) = key_and_request(dir, "root", "/O=system:masters/CN=root");
    let refused = k.run_stdin(&["apply", "-f", "-"], &manifest("root", &root, CLIENT, &["client auth"], "")).fails();
    assert!(
        refused.contains(r#"certificatesigningrequests.certificates.k8s.io "root" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"#),
        "{refused}"
    );

    // What is not a request, or asks for a signer by a name that is not one, is invalid.
    let bad = k.run_stdin(&["apply", "-f", "-"], &manifest("bad", "junk", "kubernetes", &["client auth"], "")).fails();
    assert!(
        bad.contains("spec.request: Invalid value: []byte{0x6a, 0x75, 0x6e, 0x6b}: PEM block type must be CERTIFICATE REQUEST")
            && bad.contains("spec.signerName: Invalid value: \"kubernetes\": must be a fully qualified domain and path of the form 'example.com/signer-name'"),
        "{bad}"
    );
}
