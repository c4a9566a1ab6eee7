//! Who a client certificate names, as Kubernetes reads one: the subject's common name is the
//! user, each organization a group. The certificate was verified against the cluster CA by TLS
//! before this reads it.

use x509_parser::prelude::{FromDer, X509Certificate};

/// The user and groups of a DER certificate; None if it does not parse or names no user.
pub fn identity(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    if name.is_empty() {
        return None;
    }
    let groups = subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
    Some((name, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_is_the_user_and_organizations_the_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = crate::pki::Pki::load_or_create(dir.path()).expect("pki");
        let (pem, _) =
            pki.client_certificate("jane", &["dev", "ops"], std::time::Duration::from_secs(60)).expect("cert");
        let der = rustls_pemfile::certs(&mut pem.as_bytes()).next().expect("one").expect("pem");
        assert_eq!(identity(&der), Some(("jane".to_string(), vec!["dev".to_string(), "ops".to_string()])));
        let admin = rustls_pemfile::certs(&mut pki.admin_cert.as_bytes()).next().expect("one").expect("pem");
        assert_eq!(identity(&admin), Some(("skiff-admin".to_string(), vec!["system:masters".to_string()])));
        assert_eq!(identity(b"not a certificate"), None);
    }
}
