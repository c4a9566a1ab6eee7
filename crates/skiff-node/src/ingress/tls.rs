//! The ingress's certificates: from the `kubernetes.io/tls` Secrets its Ingresses name, chosen
//! by the name the client asks for (SNI: exact, then `*.domain`); a client asking for another
//! name (or none) gets skiff's own self-signed default certificate, as ingress controllers do.

use k8s_openapi::api::core::v1::Secret;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("Secret {0} has no {1}")]
    Missing(String, &'static str),
    #[error("Secret {0}: tls.crt holds no PEM certificate")]
    NoCertificate(String),
    #[error("Secret {0}: tls.key holds no PEM private key")]
    NoKey(String),
    #[error("Secret {0}: tls.key is not a usable private key: {1}")]
    BadKey(String, rustls::Error),
    #[error("Secret {0}: tls.key does not belong to the certificate in tls.crt")]
    Mismatch(String),
    #[error("making the default certificate: {0}")]
    Default(String),
}

/// The certificate and key of a TLS Secret (NAMESPACE/NAME `name`), checked to match.
pub fn certified_key(name: &str, secret: &Secret) -> Result<CertifiedKey, CertError> {
    let data = |key: &'static str| {
        secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone()).ok_or(CertError::Missing(name.into(), key))
    };
    let (crt, key) = (data("tls.crt")?, data("tls.key")?);
    let certs: Vec<_> = rustls_pemfile::certs(&mut crt.as_slice()).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(CertError::NoCertificate(name.into()));
    }
    let key = rustls_pemfile::private_key(&mut key.as_slice()).ok().flatten().ok_or(CertError::NoKey(name.into()))?;
    let signing = any_supported_type(&key).map_err(|e| CertError::BadKey(name.into(), e))?;
    let certified = CertifiedKey::new(certs, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // Keys whose public half rustls cannot compute are taken as they are.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(CertError::Mismatch(name.into())),
    }
}

/// skiff's own certificate for names no Secret covers.
pub fn default_key() -> Result<CertifiedKey, CertError> {
    let err = |e: rcgen::Error| CertError::Default(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::new(vec!["skiff-ingress-default".to_string()]).map_err(err)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "skiff ingress default certificate");
    let cert = params.self_signed(&key).map_err(err)?;
    let der =
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| CertError::Default(e.into()))?;
    let signing = any_supported_type(&der).map_err(|e| CertError::Default(e.to_string()))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// Certificates by host name (or `*.domain`), as the Ingresses' `tls` sections name them.
pub type Certificates = HashMap<String, Arc<CertifiedKey>>;

/// Picks a certificate by SNI from the current set.
#[derive(Debug)]
pub struct Resolver {
    pub current: watch::Receiver<Arc<Certificates>>,
    pub fallback: Arc<CertifiedKey>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.current.borrow();
        let found = hello.server_name().map(str::to_lowercase).and_then(|name| {
            let wildcard = name.split_once('.').map(|(_, domain)| format!("*.{domain}"));
            certs.get(&name).or_else(|| wildcard.and_then(|w| certs.get(&w))).cloned()
        });
        Some(found.unwrap_or_else(|| self.fallback.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(crt: &str, key: &str) -> Secret {
        Secret {
            data: Some(
                [("tls.crt".to_string(), ByteString(crt.into())), ("tls.key".to_string(), ByteString(key.into()))]
                    .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn secrets_become_keys_and_bad_ones_say_why() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert =
            rcgen::CertificateParams::new(vec!["hello.test".into()]).expect("params").self_signed(&key).expect("cert");
        assert!(certified_key("default/hello", &secret(&cert.pem(), &key.serialize_pem())).is_ok());
        let other = rcgen::KeyPair::generate().expect("key");
        let e = certified_key("default/hello", &secret(&cert.pem(), &other.serialize_pem())).expect_err("mismatch");
        assert_eq!(e.to_string(), "Secret default/hello: tls.key does not belong to the certificate in tls.crt");
        let e = certified_key("default/hello", &secret(&cert.pem(), "not a key")).expect_err("no key");
        assert_eq!(e.to_string(), "Secret default/hello: tls.key holds no PEM private key");
        let e = certified_key("default/hello", &Secret::default()).expect_err("empty");
        assert_eq!(e.to_string(), "Secret default/hello has no tls.crt");
        assert!(default_key().is_ok());
    }
}
