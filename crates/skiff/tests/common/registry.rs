//! A real registry on loopback (Debian's docker-registry) for tests, and node configuration
//! that mirrors docker.io to it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A docker-registry process on 127.0.0.1, optionally with htpasswd basic auth.
pub struct Registry {
    child: Child,
    pub host: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        Self::start_with(auth, false)
    }

    /// With `tls`, the registry serves HTTPS with a self-signed certificate (`ca.pem` in its dir).
    pub fn start_with(auth: Option<(&str, &str)>, tls: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = auth {
            let out = Command::new("htpasswd").args(["-Bbn", user, pass]).output().expect("htpasswd (apache2-utils)");
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        if tls {
            // A private CA and a server certificate for 127.0.0.1 signed by it.
            let d = dir.path();
            let sh = format!(
                "set -e; cd {}; \
                 openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem; \
                 openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out srv.csr; \
                 printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf; \
                 openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem",
                d.display()
            );
            let ok = Command::new("sh")
                .arg("-c")
                .arg(&sh)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl");
            assert!(ok.success(), "making certificates");
            let (key, cert) = (d.join("key.pem"), d.join("cert.pem"));
            config.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()));
        }
        std::fs::write(dir.path().join("config.yml"), config).expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry { child, host: format!("127.0.0.1:{port}"), dir }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn mirror_config(data: &Path, registry: &Registry, extra: &str) {
    std::fs::create_dir_all(data).expect("mkdir");
    let text = format!(
        "mirrors:\n  \"{h}\":\n    endpoint: [\"http://{h}\"]\n  docker.io:\n    endpoint: [\"http://{h}\"]\n{extra}",
        h = registry.host
    );
    std::fs::write(data.join("registries.yaml"), text).expect("registries.yaml");
}
