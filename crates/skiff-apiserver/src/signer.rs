//! The cluster CA as a signer: client certificates for a user in groups, and PKCS#10 requests
//! (the `certificates.k8s.io/v1` API) signed with their subject kept as it is.
//!
//! Kubernetes reads a client certificate's CN as the user and every O as a group, so a subject
//! needs several O's; rcgen's `DistinguishedName` holds one value per attribute type, hence
//! RustCrypto's X.509 builder here. CSR self-signatures are checked with the algorithms of the
//! rustls provider the server already uses (ECDSA P-256/P-384, Ed25519, RSA 2048-8192 bits).

use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use std::time::SystemTime;
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::der::asn1::{Any, AnyRef, OctetString, Utf8StringRef};
use x509_cert::der::flagset::FlagSet;
use x509_cert::der::oid::db::{rfc4519, rfc5280, rfc5912};
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::{Decode, DecodePem, Encode, EncodePem, Error as DerError, Reader, SliceReader};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::DirectoryString;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

/// Why the CA could not issue or sign, or a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the CA certificate cannot be read: {0}")]
    CaCertificate(#[source] DerError),
    #[error("the CA key cannot be read (a PKCS#8 ECDSA P-256 key is expected): {0}")]
    CaKey(#[source] p256::pkcs8::Error),
    #[error("the CA key does not belong to the CA certificate")]
    CaKeyMismatch,
    #[error("the certificate signing request is PEM but not a CERTIFICATE REQUEST: {0}")]
    CsrPem(String),
    #[error("the certificate signing request is not a PKCS#10 request: {0}")]
    Csr(#[source] DerError),
    #[error("the certificate signing request's signature is not valid")]
    CsrSignature,
    #[error(
        "the certificate signing request is signed with an unsupported algorithm {0} (ECDSA P-256/P-384, Ed25519 and RSA of 2048 to 8192 bits are supported)"
    )]
    CsrAlgorithm(ObjectIdentifier),
    #[error("the subject has {0} common names (CN); at most one is allowed")]
    CommonNames(usize),
    #[error("the subject's {attribute} is not a string: {source}")]
    SubjectValue { attribute: &'static str, source: DerError },
    #[error("a client certificate needs a common name (CN): the user")]
    NoCommonName,
    #[error(
        "unknown usage {0:?} (supported: \"digital signature\", \"key encipherment\", \"client auth\", \"server auth\")"
    )]
    UnknownUsage(String),
    #[error("the certificate would not be valid at any time: it ends before it starts (or the CA ends first)")]
    Validity,
    #[error("a certificate time is out of range: {0}")]
    Time(#[source] DerError),
    #[error("no randomness from the system: {0}")]
    Random(#[source] p256::elliptic_curve::common::getrandom::Error),
    #[error("encoding the certificate: {0}")]
    Encode(#[source] DerError),
    #[error("building the certificate: {0}")]
    Build(#[source] x509_cert::builder::Error),
    #[error("encoding the new key: {0}")]
    NewKey(#[source] p256::pkcs8::Error),
}

/// Who a certificate names: the Kubernetes user (CN) and its groups (one O each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub common_name: String,
    pub organizations: Vec<String>,
}

/// A usage a certificate is issued for, by its `certificates.k8s.io/v1` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    DigitalSignature,
    KeyEncipherment,
    ClientAuth,
    ServerAuth,
}

impl Usage {
    /// A CSR's `spec.usages` string, as upstream names it (`signing` is its alias of
    /// `digital signature`).
    pub fn parse(s: &str) -> Result<Usage, SignerError> {
        match s {
            "digital signature" | "signing" => Ok(Usage::DigitalSignature),
            "key encipherment" => Ok(Usage::KeyEncipherment),
            "client auth" => Ok(Usage::ClientAuth),
            "server auth" => Ok(Usage::ServerAuth),
            other => Err(SignerError::UnknownUsage(other.to_string())),
        }
    }
}

/// A fresh P-256 key and a client certificate for `subject`, signed by the CA: returns (the
/// certificate PEM, the PKCS#8 key PEM).
pub fn issue_client(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    subject: &Subject,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<(String, String), SignerError> {
    if subject.common_name.is_empty() {
        return Err(SignerError::NoCommonName);
    }
    let ca = Ca::load(ca_cert_pem, ca_key_pem)?;
    let key = SigningKey::try_generate().map_err(SignerError::Random)?;
    let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).map_err(|e| SignerError::Build(e.into()))?;
    let cert = ca.sign(
        subject_name(subject)?,
        spki,
        &[Usage::DigitalSignature, Usage::ClientAuth],
        None,
        not_before,
        not_after,
    )?;
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(SignerError::NewKey)?;
    Ok((cert, key_pem.to_string()))
}

/// Sign a PKCS#10 request (PEM or DER) for `usages`: the certificate keeps the request's subject
/// and public key as they are, and its subjectAltName if it asks for one (as upstream's signer
/// keeps the requested names). The request's self-signature must hold. Returns the certificate
/// PEM.
pub fn sign_csr(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    csr_der_or_pem: &[u8],
    usages: &[Usage],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<String, SignerError> {
    let ca = Ca::load(ca_cert_pem, ca_key_pem)?;
    let csr = verified_csr(csr_der_or_pem)?;
    // The identity must be unambiguous: readers differ on which of several CNs counts.
    read_subject(&csr.info.subject)?;
    let san = requested_san(&csr)?;
    ca.sign(csr.info.subject, csr.info.public_key, usages, san, not_before, not_after)
}

/// What a request names: its CN (empty if it has none) and all its O's, in order.
pub fn csr_subject(csr: &[u8]) -> Result<Subject, SignerError> {
    let der = csr_der(csr)?;
    let req = CertReq::from_der(&der).map_err(SignerError::Csr)?;
    read_subject(&req.info.subject)
}

/// The CA certificate and its key.
struct Ca {
    cert: Certificate,
    key: SigningKey,
}

impl Ca {
    fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, SignerError> {
        let cert_pem = pem_block(cert_pem, "CERTIFICATE").unwrap_or(cert_pem);
        let cert = Certificate::from_pem(cert_pem.as_bytes()).map_err(SignerError::CaCertificate)?;
        let key_pem = pem_block(key_pem, "PRIVATE KEY").unwrap_or(key_pem);
        let key = SigningKey::from_pkcs8_pem(key_pem).map_err(SignerError::CaKey)?;
        // A key of another CA would sign certificates nobody can chain to this one.
        let ours = SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).map_err(|_| SignerError::CaKeyMismatch)?;
        if &ours != cert.tbs_certificate().subject_public_key_info() {
            return Err(SignerError::CaKeyMismatch);
        }
        Ok(Ca { cert, key })
    }

    /// The authorityKeyIdentifier of what this CA signs: its subjectKeyIdentifier, so that
    /// verifiers match the two (or, without one, the RFC 5280 SHA-1 of its key).
    fn key_identifier(&self) -> Result<AuthorityKeyIdentifier, SignerError> {
        let tbs = self.cert.tbs_certificate();
        if let Ok(Some((_, ski))) = tbs.get_extension::<SubjectKeyIdentifier>() {
            return Ok(AuthorityKeyIdentifier { key_identifier: Some(ski.0), ..Default::default() });
        }
        let der = tbs.subject_public_key_info().to_der().map_err(SignerError::Encode)?;
        let spki = SubjectPublicKeyInfoRef::from_der(&der).map_err(SignerError::Encode)?;
        AuthorityKeyIdentifier::try_from(spki).map_err(SignerError::Encode)
    }

    /// A certificate of `subject` for `spki`, signed by this CA, as PEM.
    fn sign(
        &self,
        subject: Name,
        spki: SubjectPublicKeyInfoOwned,
        usages: &[Usage],
        san: Option<Extension>,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<String, SignerError> {
        // Nothing outlives its CA (upstream's signer caps notAfter the same way).
        let ca_end = self.cert.tbs_certificate().validity().not_after.to_system_time();
        let not_after = not_after.min(ca_end);
        if not_after <= not_before {
            return Err(SignerError::Validity);
        }
        let validity = Validity::new(
            Time::try_from(not_before).map_err(SignerError::Time)?,
            Time::try_from(not_after).map_err(SignerError::Time)?,
        );
        let mut extensions = usage_extensions(usages)?;
        extensions.push(extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?);
        extensions.push(extension(&self.key_identifier()?, false)?);
        extensions.extend(san);
        let profile = Leaf { issuer: self.cert.tbs_certificate().subject().clone(), subject, extensions };
        let builder = CertificateBuilder::new(profile, random_serial()?, validity, spki).map_err(SignerError::Build)?;
        let cert = builder.build::<_, DerSignature>(&self.key).map_err(SignerError::Build)?;
        cert.to_pem(LineEnding::LF).map_err(SignerError::Encode)
    }
}

/// The builder's profile: the subject, issuer and extensions are all decided above.
struct Leaf {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for Leaf {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

fn extension<T: AssociatedOid + Encode>(value: &T, critical: bool) -> Result<Extension, SignerError> {
    let der = value.to_der().map_err(SignerError::Encode)?;
    Ok(Extension { extn_id: T::OID, critical, extn_value: OctetString::new(der).map_err(SignerError::Encode)? })
}

/// keyUsage (critical) and extendedKeyUsage for `usages`; either left out when none is asked,
/// as Go's x509 leaves them.
fn usage_extensions(usages: &[Usage]) -> Result<Vec<Extension>, SignerError> {
    let mut key_usage = FlagSet::<KeyUsages>::default();
    let mut extended = Vec::new();
    for usage in usages {
        let purpose = match usage {
            Usage::DigitalSignature => {
                key_usage |= KeyUsages::DigitalSignature;
                continue;
            }
            Usage::KeyEncipherment => {
                key_usage |= KeyUsages::KeyEncipherment;
                continue;
            }
            Usage::ClientAuth => rfc5280::ID_KP_CLIENT_AUTH,
            Usage::ServerAuth => rfc5280::ID_KP_SERVER_AUTH,
        };
        if !extended.contains(&purpose) {
            extended.push(purpose);
        }
    }
    let mut out = Vec::new();
    if !key_usage.is_empty() {
        out.push(extension(&KeyUsage(key_usage), true)?);
    }
    if !extended.is_empty() {
        out.push(extension(&ExtendedKeyUsage(extended), false)?);
    }
    Ok(out)
}

/// 16 random bytes, the top bit clear so the DER INTEGER is positive without padding (RFC 5280:
/// positive, at most 20 octets), and the next set so it keeps its length.
fn random_serial() -> Result<SerialNumber, SignerError> {
    let mut bytes = [0u8; 16];
    p256::elliptic_curve::common::getrandom::fill(&mut bytes).map_err(SignerError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes).map_err(SignerError::Encode)
}

/// The O's, then the CN, each a UTF8String in an RDN of its own: Go's `pkix.Name` order, so the
/// subject reads as kubeadm's do (`O = system:masters, CN = kubernetes-admin`).
fn subject_name(subject: &Subject) -> Result<Name, SignerError> {
    let atav = |oid: ObjectIdentifier, value: &str| -> Result<RelativeDistinguishedName, SignerError> {
        let value =
            Any::encode_from(&Utf8StringRef::new(value).map_err(SignerError::Encode)?).map_err(SignerError::Encode)?;
        RelativeDistinguishedName::try_from(vec![AttributeTypeAndValue { oid, value }]).map_err(SignerError::Encode)
    };
    let mut rdns = RdnSequence::default();
    for o in &subject.organizations {
        rdns.push(atav(rfc4519::ORGANIZATION_NAME, o)?);
    }
    rdns.push(atav(rfc4519::COMMON_NAME, &subject.common_name)?);
    // `Name` is only built from DER (or a string that would need escaping) outside `hazmat`.
    Name::from_der(&rdns.to_der().map_err(SignerError::Encode)?).map_err(SignerError::Encode)
}

/// The CN and all O's of `name`; more than one CN is refused.
fn read_subject(name: &Name) -> Result<Subject, SignerError> {
    let text = |attribute: &'static str, value: &Any| {
        DirectoryString::try_from(value)
            .map(|s| s.value().into_owned())
            .map_err(|source| SignerError::SubjectValue { attribute, source })
    };
    let mut names = Vec::new();
    let mut organizations = Vec::new();
    for atav in name.iter() {
        if atav.oid == rfc4519::COMMON_NAME {
            names.push(text("common name", &atav.value)?);
        } else if atav.oid == rfc4519::ORGANIZATION_NAME {
            organizations.push(text("organization", &atav.value)?);
        }
    }
    if names.len() > 1 {
        return Err(SignerError::CommonNames(names.len()));
    }
    Ok(Subject { common_name: names.pop().unwrap_or_default(), organizations })
}

/// The first `label` PEM block in `text`: files may carry comments or several blocks, which
/// the strict RFC 7468 decoder refuses.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let len = text[start..].find(&end)?;
    Some(&text[start..start + len + end.len()])
}

/// A request's DER, from PEM or as given.
fn csr_der(input: &[u8]) -> Result<Vec<u8>, SignerError> {
    if !input.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(input).map_err(|e| SignerError::CsrPem(e.to_string()))?;
    // `NEW CERTIFICATE REQUEST` is what older openssl (`-newhdr`) writes.
    let block = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]
        .iter()
        .find_map(|label| pem_block(text, label))
        .unwrap_or(text);
    let (label, der) =
        x509_cert::der::pem::decode_vec(block.as_bytes()).map_err(|e| SignerError::CsrPem(e.to_string()))?;
    match label {
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Ok(der),
        other => Err(SignerError::CsrPem(format!("the block is a {other}"))),
    }
}

/// The request, once its self-signature is checked over the bytes as received (a re-encoding
/// could differ from what was signed).
fn verified_csr(input: &[u8]) -> Result<CertReq, SignerError> {
    let der = csr_der(input)?;
    let req = CertReq::from_der(&der).map_err(SignerError::Csr)?;
    let outer = AnyRef::from_der(&der).map_err(SignerError::Csr)?;
    let signed = SliceReader::new(outer.value()).and_then(|mut r| r.tlv_bytes()).map_err(SignerError::Csr)?;
    // webpki's identifiers are the AlgorithmIdentifier's contents, without its SEQUENCE header.
    let contents = |alg: &x509_cert::spki::AlgorithmIdentifierOwned| -> Result<Vec<u8>, SignerError> {
        let der = alg.to_der().map_err(SignerError::Csr)?;
        Ok(AnyRef::from_der(&der).map_err(SignerError::Csr)?.value().to_vec())
    };
    let key_alg = contents(&req.info.public_key.algorithm)?;
    let sig_alg = contents(&req.algorithm)?;
    let algorithm = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all
        .iter()
        .find(|a| *a.public_key_alg_id() == *key_alg && *a.signature_alg_id() == *sig_alg)
        .copied()
        .ok_or(SignerError::CsrAlgorithm(req.algorithm.oid))?;
    let key = req.info.public_key.subject_public_key.as_bytes().ok_or(SignerError::CsrSignature)?;
    let signature = req.signature.as_bytes().ok_or(SignerError::CsrSignature)?;
    algorithm.verify_signature(key, signed, signature).map_err(|_| SignerError::CsrSignature)?;
    Ok(req)
}

/// The subjectAltName a request asks for in its extensionRequest attribute, critical only when
/// the subject is empty (RFC 5280 4.2.1.6).
fn requested_san(req: &CertReq) -> Result<Option<Extension>, SignerError> {
    let Some(attr) = req.info.attributes.iter().find(|a| a.oid == rfc5912::ID_EXTENSION_REQ) else {
        return Ok(None);
    };
    for value in attr.values.iter() {
        let extensions: Vec<Extension> = value.decode_as().map_err(SignerError::Csr)?;
        if let Some(mut san) = extensions.into_iter().find(|e| e.extn_id == rfc5280::ID_CE_SUBJECT_ALT_NAME) {
            san.critical = req.info.subject.is_empty();
            return Ok(Some(san));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints as RcgenBasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    use std::time::Duration;
    use x509_parser::prelude::FromDer;

    /// A CA made as `pki.rs` makes it: (certificate PEM, key PEM).
    fn ca() -> (String, String) {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "skiff-ca");
        ca.is_ca = IsCa::Ca(RcgenBasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let ca_cert = ca.self_signed(&ca_key).expect("self-signed");
        (ca_cert.pem(), ca_key.serialize_pem())
    }

    fn jane() -> Subject {
        Subject { common_name: "jane".into(), organizations: vec!["dev".into(), "ops".into()] }
    }

    fn window() -> (SystemTime, SystemTime) {
        let now = SystemTime::now();
        (now - Duration::from_secs(300), now + Duration::from_secs(3600))
    }

    fn der_of(pem: &str) -> Vec<u8> {
        let (label, der) = x509_cert::der::pem::decode_vec(pem.as_bytes()).expect("pem");
        assert_eq!(label, "CERTIFICATE");
        der
    }

    fn cn_and_orgs(der: &[u8]) -> (Vec<String>, Vec<String>) {
        let (_, cert) = x509_parser::parse_x509_certificate(der).expect("x509-parser reads it");
        let subject = cert.subject();
        let cn = subject.iter_common_name().map(|a| a.as_str().expect("cn").to_string()).collect();
        let o = subject.iter_organization().map(|a| a.as_str().expect("o").to_string()).collect();
        (cn, o)
    }

    /// The openssl binary, if this machine has one.
    fn openssl() -> Option<std::path::PathBuf> {
        let ok = std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("openssl is not installed: skipping the openssl checks");
        }
        ok.then(|| "openssl".into())
    }

    fn run(cmd: &mut std::process::Command) -> String {
        let out = cmd.output().expect("run openssl");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{cmd:?}: {text}");
        text
    }

    fn webpki_accepts_as_client(ca_pem: &str, cert_pem: &str) {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der_of(ca_pem).into()).expect("root");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .expect("verifier");
        let cert = rustls::pki_types::CertificateDer::from(der_of(cert_pem));
        verifier.verify_client_cert(&cert, &[], rustls::pki_types::UnixTime::now()).expect("a client certificate");
    }

    #[test]
    fn issues_a_client_certificate_with_several_organizations() {
        let (ca_pem, ca_key) = ca();
        let (nb, na) = window();
        let (cert_pem, key_pem) = issue_client(&ca_pem, &ca_key, &jane(), nb, na).expect("issue");
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{key_pem}");

        // (a) x509-parser (what the authenticator reads) sees the user and both groups.
        let der = der_of(&cert_pem);
        assert_eq!(cn_and_orgs(&der), (vec!["jane".to_string()], vec!["dev".to_string(), "ops".to_string()]));
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse");
        let ca_der = der_of(&ca_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).expect("parse ca");
        assert_eq!(cert.issuer(), ca.subject());
        let serial = cert.raw_serial();
        assert!(!serial.is_empty() && serial.len() <= 20 && serial[0] & 0x80 == 0, "{serial:?}");
        let ku = cert.key_usage().expect("ku").expect("has key usage");
        assert!(ku.critical && ku.value.digital_signature() && !ku.value.key_cert_sign());
        let eku = cert.extended_key_usage().expect("eku").expect("has eku").value;
        assert!(eku.client_auth && !eku.server_auth);
        let bc = cert.basic_constraints().expect("bc").expect("has basic constraints").value;
        assert!(!bc.ca);
        let ca_ski = ca
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .expect("the rcgen CA has a subject key identifier");
        let aki = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.clone(),
                _ => None,
            })
            .expect("an authority key identifier");
        assert_eq!(aki.0, &ca_ski[..]);
        // The key is the certificate's.
        let key = KeyPair::from_pem(&key_pem).expect("rcgen reads the key");
        assert_eq!(key.public_key_raw(), &*cert.public_key().subject_public_key.data);

        // (b) rustls/webpki accepts it as a client certificate of this CA.
        webpki_accepts_as_client(&ca_pem, &cert_pem);

        // (c) openssl agrees.
        if let Some(openssl) = openssl() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (ca_path, cert_path) = (dir.path().join("ca.pem"), dir.path().join("cert.pem"));
            std::fs::write(&ca_path, &ca_pem).expect("write");
            std::fs::write(&cert_path, &cert_pem).expect("write");
            let verified = run(std::process::Command::new(&openssl)
                .args(["verify", "-purpose", "sslclient", "-CAfile"])
                .arg(&ca_path)
                .arg(&cert_path));
            assert!(verified.contains(": OK"), "{verified}");
            let subject =
                run(std::process::Command::new(&openssl).args(["x509", "-noout", "-subject", "-in"]).arg(&cert_path));
            assert_eq!(subject.trim(), "subject=O = dev, O = ops, CN = jane");
        }
    }

    #[test]
    fn refuses_what_it_cannot_sign() {
        let (ca_pem, ca_key) = ca();
        let (other_pem, other_key) = ca();
        let (nb, na) = window();
        let nobody = Subject { common_name: String::new(), organizations: vec!["dev".into()] };
        assert!(matches!(issue_client(&ca_pem, &ca_key, &nobody, nb, na), Err(SignerError::NoCommonName)));
        assert!(matches!(issue_client(&ca_pem, &other_key, &jane(), nb, na), Err(SignerError::CaKeyMismatch)));
        assert!(matches!(issue_client(&other_pem, "junk", &jane(), nb, na), Err(SignerError::CaKey(_))));
        assert!(matches!(issue_client("junk", &ca_key, &jane(), nb, na), Err(SignerError::CaCertificate(_))));
        assert!(matches!(issue_client(&ca_pem, &ca_key, &jane(), na, nb), Err(SignerError::Validity)));
        assert!(matches!(Usage::parse("cert sign"), Err(SignerError::UnknownUsage(_))));
        assert_eq!(Usage::parse("server auth").expect("known"), Usage::ServerAuth);
    }

    /// A node's CSR, from openssl when present (two O's), else from rcgen (which holds one).
    fn node_csr(dir: &std::path::Path) -> (Vec<u8>, Vec<String>) {
        if let Some(openssl) = openssl() {
            let csr = dir.join("n1.csr");
            run(std::process::Command::new(&openssl)
                .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
                .args(["-subj", "/O=system:nodes/O=extra/CN=system:node:n1", "-keyout"])
                .arg(dir.join("n1.key"))
                .arg("-out")
                .arg(&csr));
            return (std::fs::read(csr).expect("csr"), vec!["system:nodes".into(), "extra".into()]);
        }
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
        params.distinguished_name.push(DnType::CommonName, "system:node:n1");
        let csr = params.serialize_request(&key).expect("csr");
        (csr.pem().expect("pem").into_bytes(), vec!["system:nodes".into()])
    }

    #[test]
    fn signs_a_csr_keeping_its_subject() {
        let (ca_pem, ca_key) = ca();
        let dir = tempfile::tempdir().expect("tempdir");
        let (csr_pem, orgs) = node_csr(dir.path());
        let subject = csr_subject(&csr_pem).expect("subject");
        assert_eq!(subject, Subject { common_name: "system:node:n1".into(), organizations: orgs.clone() });

        let usages: Vec<Usage> = ["digital signature", "key encipherment", "client auth"]
            .iter()
            .map(|u| Usage::parse(u).expect("usage"))
            .collect();
        let (nb, na) = window();
        let cert_pem = sign_csr(&ca_pem, &ca_key, &csr_pem, &usages, nb, na).expect("sign");
        let der = der_of(&cert_pem);
        assert_eq!(cn_and_orgs(&der), (vec!["system:node:n1".to_string()], orgs));
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse");
        let req_der = csr_der(&csr_pem).expect("der");
        let (_, req) = x509_parser::certification_request::X509CertificationRequest::from_der(&req_der).expect("csr");
        assert_eq!(cert.subject().as_raw(), req.certification_request_info.subject.as_raw(), "the subject as it was");
        assert_eq!(cert.public_key().raw, req.certification_request_info.subject_pki.raw, "the key as it was");
        let ku = cert.key_usage().expect("ku").expect("has key usage").value;
        assert!(ku.digital_signature() && ku.key_encipherment());
        let eku = cert.extended_key_usage().expect("eku").expect("has eku").value;
        assert!(eku.client_auth && !eku.server_auth);
        webpki_accepts_as_client(&ca_pem, &cert_pem);

        // DER in, the same subject out.
        assert_eq!(csr_subject(&req_der).expect("der subject"), subject);
        sign_csr(&ca_pem, &ca_key, &req_der, &usages, nb, na).expect("sign der");

        // A flipped bit in the signature is refused.
        let mut tampered = req_der.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        let err = sign_csr(&ca_pem, &ca_key, &tampered, &usages, nb, na).expect_err("tampered");
        assert!(matches!(err, SignerError::CsrSignature), "{err}");
        assert!(matches!(sign_csr(&ca_pem, &ca_key, b"junk", &usages, nb, na), Err(SignerError::Csr(_))));
    }

    /// The Kubernetes documentation's user CSR: an RSA key made with openssl.
    #[test]
    fn signs_an_rsa_csr() {
        let Some(openssl) = openssl() else { return };
        let (ca_pem, ca_key) = ca();
        let dir = tempfile::tempdir().expect("tempdir");
        let csr = dir.path().join("myuser.csr");
        run(std::process::Command::new(&openssl)
            .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=myuser/O=dev", "-keyout"])
            .arg(dir.path().join("myuser.key"))
            .arg("-out")
            .arg(&csr));
        let csr = std::fs::read(csr).expect("csr");
        let (nb, na) = window();
        let cert_pem = sign_csr(&ca_pem, &ca_key, &csr, &[Usage::ClientAuth], nb, na).expect("sign");
        assert_eq!(cn_and_orgs(&der_of(&cert_pem)), (vec!["myuser".to_string()], vec!["dev".to_string()]));
        webpki_accepts_as_client(&ca_pem, &cert_pem);
    }

    #[test]
    fn a_serving_csr_keeps_its_names() {
        let (ca_pem, ca_key) = ca();
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["n1.example".to_string()]).expect("params");
        params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
        params.distinguished_name.push(DnType::CommonName, "system:node:n1");
        let csr = params.serialize_request(&key).expect("csr").pem().expect("pem");
        let (nb, na) = window();
        let usages = [Usage::DigitalSignature, Usage::ServerAuth];
        let cert_pem = sign_csr(&ca_pem, &ca_key, csr.as_bytes(), &usages, nb, na).expect("sign");
        let der = der_of(&cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse");
        let san = cert.subject_alternative_name().expect("san").expect("has san");
        assert!(!san.critical);
        assert_eq!(san.value.general_names, vec![x509_parser::extensions::GeneralName::DNSName("n1.example")]);
        assert!(cert.extended_key_usage().expect("eku").expect("has eku").value.server_auth);
        assert!(cert.key_usage().expect("ku").expect("has key usage").value.digital_signature());
    }
}
