//! The cluster's certificates: a CA, the API server's serving certificate and the admin's client
//! certificate, made once under `DATA_DIR/pki`, plus a bearer token and the admin kubeconfig.

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
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

/// PEM material the server and its clients need.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: String,
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

fn leaf(cn: &str, org: Option<&str>, sans: Vec<SanType>, usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    if let Some(o) = org {
        p.distinguished_name.push(DnType::OrganizationName, o);
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

    /// Like [`Pki::load_or_create`], with extra serving-certificate addresses and names (those
    /// clients in pods use). A PKI made before keeps its certificate: the CA key is not kept.
    pub fn load_or_create_with(dir: &Path, extra_ips: &[IpAddr], extra_names: &[String]) -> Result<Self, PkiError> {
        let files = ["ca.crt", "server.crt", "server.key", "admin.crt", "admin.key", "token"];
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        if paths.iter().all(|p| p.exists()) {
            let read = |p: &PathBuf| fs::read_to_string(p).map_err(io_err(p));
            return Ok(Pki {
                ca_cert: read(&paths[0])?,
                server_cert: read(&paths[1])?,
                server_key: read(&paths[2])?,
                admin_cert: read(&paths[3])?,
                admin_key: read(&paths[4])?,
                token: read(&paths[5])?.trim().to_string(),
            });
        }
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let pki = Self::generate(extra_ips, extra_names)?;
        let contents = [&pki.ca_cert, &pki.server_cert, &pki.server_key, &pki.admin_cert, &pki.admin_key, &pki.token];
        for (p, c) in paths.iter().zip(contents) {
            write_private(p, c)?;
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
        let issuer = Issuer::new(ca, ca_key);

        let mut sans = vec![SanType::DnsName("localhost".try_into()?), SanType::DnsName("kubernetes".try_into()?)];
        sans.push(SanType::DnsName("kubernetes.default.svc".try_into()?));
        for name in extra_names {
            sans.push(SanType::DnsName(name.clone().try_into()?));
        }
        for &ip in [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)].iter().chain(extra_ips) {
            sans.push(SanType::IpAddress(ip));
        }
        let server_key = KeyPair::generate()?;
        let server =
            leaf("kube-apiserver", None, sans, ExtendedKeyUsagePurpose::ServerAuth).signed_by(&server_key, &issuer)?;

        let admin_key = KeyPair::generate()?;
        let admin = leaf("skiff-admin", Some("system:masters"), vec![], ExtendedKeyUsagePurpose::ClientAuth)
            .signed_by(&admin_key, &issuer)?;

        let token_bytes: [u8; 32] = rand::random();
        Ok(Pki {
            ca_cert: ca_cert.pem(),
            server_cert: server.pem(),
            server_key: server_key.serialize_pem(),
            admin_cert: admin.pem(),
            admin_key: admin_key.serialize_pem(),
            token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token_bytes),
        })
    }

    /// An admin kubeconfig for the server at `addr`.
    pub fn kubeconfig(&self, addr: SocketAddr) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: https://{host}:{port}\n    certificate-authority-data: {ca}\ncontexts:\n- name: skiff\n  context:\n    cluster: skiff\n    user: skiff-admin\n    namespace: default\ncurrent-context: skiff\nusers:\n- name: skiff-admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
            port = addr.port(),
            ca = b64(&self.ca_cert),
            cert = b64(&self.admin_cert),
            key = b64(&self.admin_key),
        )
    }
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
    }
}
