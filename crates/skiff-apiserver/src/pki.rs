//! The cluster's certificates: a CA, the API server's serving certificate and the admin's client
//! certificate, made once under `DATA_DIR/pki`, plus a bearer token and the admin kubeconfig.
//! The CA key is kept (`ca.key`, 0600) so that the server can issue identities: client
//! certificates for users (`skiff kubeconfig --user`) and components, and a fresh serving
//! certificate at every start (with the addresses and names of this start). A PKI made before
//! the key was kept still works, but issues nothing.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("generating certificates: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("the certificates: {0}")]
    Invalid(String),
    #[error(
        "this cluster's CA key is not kept ({0} is missing: the data directory predates it), so no identity can be issued"
    )]
    NoCaKey(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

/// PEM material the server and its clients need.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: String,
    /// None for a PKI made before the key was kept.
    pub ca_key: Option<String>,
    pub server_cert: String,
    pub server_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    pub token: String,
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn leaf(cn: &str, orgs: &[&str], sans: Vec<SanType>, usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    // Each group an O of its own, as Kubernetes reads a client certificate's groups.
    for o in orgs {
        p.distinguished_name.push(DnType::OrganizationName, *o);
    }
    p.subject_alt_names = sans;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![usage];
    p.not_after = rcgen::date_time_ymd(2124, 1, 1);
    p
}

impl Pki {
    /// Load the PKI from `dir`, creating it on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
        Self::load_or_create_with(dir, &[], &[])
    }

    /// The PKI in `dir` as it is, changing nothing (what `skiff kubeconfig --user` reads).
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let read = |f: &str| fs::read_to_string(dir.join(f)).map_err(io_err(&dir.join(f)));
        let key_path = dir.join("ca.key");
        Ok(Pki {
            ca_cert: read("ca.crt")?,
            ca_key: key_path.exists().then(|| read("ca.key")).transpose()?,
            server_cert: read("server.crt")?,
            server_key: read("server.key")?,
            admin_cert: read("admin.crt")?,
            admin_key: read("admin.key")?,
            token: read("token")?.trim().to_string(),
        })
    }

    /// Like [`Pki::load_or_create`], with extra serving-certificate addresses and names (those
    /// clients in pods use). With the CA key, the serving certificate is issued anew for them
    /// (a PKI made before the key was kept keeps its certificate).
    pub fn load_or_create_with(dir: &Path, extra_ips: &[IpAddr], extra_names: &[String]) -> Result<Self, PkiError> {
        let files = ["ca.crt", "server.crt", "server.key", "admin.crt", "admin.key", "token"];
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        let key_path = dir.join("ca.key");
        if paths.iter().all(|p| p.exists()) {
            let read = |p: &PathBuf| fs::read_to_string(p).map_err(io_err(p));
            let mut pki = Pki {
                ca_cert: read(&paths[0])?,
                ca_key: key_path.exists().then(|| read(&key_path)).transpose()?,
                server_cert: read(&paths[1])?,
                server_key: read(&paths[2])?,
                admin_cert: read(&paths[3])?,
                admin_key: read(&paths[4])?,
                token: read(&paths[5])?.trim().to_string(),
            };
            if pki.ca_key.is_some() {
                let (cert, key) = pki.serving_certificate(extra_ips, extra_names)?;
                write_private(&paths[1], &cert)?;
                write_private(&paths[2], &key)?;
                (pki.server_cert, pki.server_key) = (cert, key);
            }
            return Ok(pki);
        }
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
        }
        let pki = Self::generate(extra_ips, extra_names)?;
        let contents = [&pki.ca_cert, &pki.server_cert, &pki.server_key, &pki.admin_cert, &pki.admin_key, &pki.token];
        for (p, c) in paths.iter().zip(contents) {
            write_private(p, c)?;
        }
        if let Some(key) = &pki.ca_key {
            write_private(&key_path, key)?;
        }
        Ok(pki)
    }

    fn generate(extra_ips: &[IpAddr], extra_names: &[String]) -> Result<Self, PkiError> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "skiff-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let ca_cert = ca.self_signed(&ca_key)?;
        let token_bytes: [u8; 32] = rand::random();
        let mut pki = Pki {
            ca_cert: ca_cert.pem(),
            ca_key: Some(ca_key.serialize_pem()),
            server_cert: String::new(),
            server_key: String::new(),
            admin_cert: String::new(),
            admin_key: String::new(),
            token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token_bytes),
        };
        (pki.server_cert, pki.server_key) = pki.serving_certificate(extra_ips, extra_names)?;
        // The admin's is for as long as the CA: it is the key to the cluster, kept 0600.
        let admin_key = KeyPair::generate()?;
        let admin = leaf("skiff-admin", &["system:masters"], vec![], ExtendedKeyUsagePurpose::ClientAuth)
            .signed_by(&admin_key, &pki.issuer()?)?;
        (pki.admin_cert, pki.admin_key) = (admin.pem(), admin_key.serialize_pem());
        Ok(pki)
    }

    /// The CA as a signer.
    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = self.ca_key.as_deref().ok_or_else(|| PkiError::NoCaKey("ca.key".into()))?;
        Ok(Issuer::from_ca_cert_pem(&self.ca_cert, KeyPair::from_pem(key)?)?)
    }

    /// A serving certificate for the API server's names and addresses (and `extra_*`), valid
    /// for a year (issued again at every start).
    fn serving_certificate(&self, extra_ips: &[IpAddr], extra_names: &[String]) -> Result<(String, String), PkiError> {
        let mut sans = vec![SanType::DnsName("localhost".try_into()?), SanType::DnsName("kubernetes".try_into()?)];
        sans.push(SanType::DnsName("kubernetes.default.svc".try_into()?));
        for name in extra_names {
            sans.push(SanType::DnsName(name.clone().try_into()?));
        }
        for &ip in [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)].iter().chain(extra_ips) {
            sans.push(SanType::IpAddress(ip));
        }
        let mut params = leaf("kube-apiserver", &[], sans, ExtendedKeyUsagePurpose::ServerAuth);
        params.not_after = rcgen::date_time_ymd(2124, 1, 1).min(until(SERVING_LIFETIME));
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A client certificate (and its key) for `user` in `groups` (each an O of its own: the
    /// signer, as rcgen keeps one value per attribute), valid for `lifetime`: what a kubeconfig
    /// of that identity holds.
    pub fn client_certificate(
        &self,
        user: &str,
        groups: &[&str],
        lifetime: std::time::Duration,
    ) -> Result<(String, String), PkiError> {
        let key = self.ca_key.as_deref().ok_or_else(|| PkiError::NoCaKey("ca.key".into()))?;
        let subject = crate::signer::Subject {
            common_name: user.to_string(),
            organizations: groups.iter().map(|g| g.to_string()).collect(),
        };
        let now = std::time::SystemTime::now();
        // A little slack for clocks that disagree.
        let not_before = now - std::time::Duration::from_secs(300);
        crate::signer::issue_client(&self.ca_cert, key, &subject, not_before, now + lifetime)
            .map_err(|e| PkiError::Invalid(e.to_string()))
    }

    /// An admin kubeconfig for the server at `addr`.
    pub fn kubeconfig(&self, addr: SocketAddr) -> String {
        let host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let server = format!("https://{host}:{}", addr.port());
        kubeconfig(&server, &self.ca_cert, "skiff-admin", &self.admin_cert, &self.admin_key)
    }
}

/// How long a serving certificate is issued for.
const SERVING_LIFETIME: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// Now plus `lifetime`.
fn until(lifetime: std::time::Duration) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + lifetime
}

/// A kubeconfig for `server` (trusting `ca`) as `user` with a client certificate.
pub fn kubeconfig(server: &str, ca: &str, user: &str, cert: &str, key: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: skiff\n  context:\n    cluster: skiff\n    user: {user:?}\n    namespace: default\ncurrent-context: skiff\nusers:\n- name: {user:?}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(ca),
        cert = b64(cert),
        key = b64(key),
    )
}

/// Write `contents` to `path` readable only by its owner, atomically.
pub fn write_kubeconfig(path: &Path, contents: &str) -> Result<(), PkiError> {
    write_private(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Pki::load_or_create(dir.path()).expect("create");
        let b = Pki::load_or_create(dir.path()).expect("reload");
        assert_eq!(a.ca_cert, b.ca_cert);
        assert_eq!(a.token, b.token);
        assert!(a.server_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let kc = a.kubeconfig("127.0.0.1:6443".parse().expect("addr"));
        assert!(kc.contains("server: https://127.0.0.1:6443"));
        assert!(dir.path().join("ca.key").exists(), "the CA key is kept");
        // The serving certificate is issued anew at each start (with this start's names).
        assert_ne!(a.server_cert, b.server_cert);
        let (cert, key) =
            b.client_certificate("jane", &["dev", "ops"], std::time::Duration::from_secs(3600)).expect("jane");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----") && key.contains("PRIVATE KEY"));
    }

    #[test]
    fn a_pki_without_its_ca_key_still_loads_and_issues_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Pki::load_or_create(dir.path()).expect("create");
        std::fs::remove_file(dir.path().join("ca.key")).expect("remove");
        let b = Pki::load_or_create(dir.path()).expect("reload");
        assert_eq!(a.server_cert, b.server_cert, "kept as it was");
        let err = b.client_certificate("jane", &[], std::time::Duration::from_secs(60)).expect_err("no key");
        assert!(err.to_string().contains("CA key is not kept"), "{err}");
    }
}
