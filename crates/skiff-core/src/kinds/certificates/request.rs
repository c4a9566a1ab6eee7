//! PKCS#10 requests and issued certificates as the certificates API reads them: PEM blocks as
//! Go's `encoding/pem` finds them, a request as `certificates.ParseCSR` (its subject and the
//! subjectAltNames it asks for) and `CheckSignature`, and `status.certificate` as upstream's
//! `validateCertificate` checks it. Signatures are checked with ring (ECDSA P-256/P-384,
//! Ed25519, RSA PKCS#1 v1.5 of 2048 to 8192 bits).

use base64::Engine;
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::Certificate;
use x509_cert::der::asn1::AnyRef;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::oid::db::{rfc4519, rfc5280, rfc5912};
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::{DirectoryString, GeneralName};
use x509_cert::request::CertReq;

/// Why a request is not one the API accepts, in the words of Go's errors where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotPem,
    #[error("x509: malformed certificate request: {0}")]
    Malformed(x509_cert::der::Error),
    #[error("x509: cannot verify signature: algorithm unimplemented")]
    UnsupportedAlgorithm,
    #[error("x509: cannot verify signature: insecure algorithm SHA1-RSA")]
    Sha1,
    #[error("x509: ECDSA verification failure")]
    Ecdsa,
    #[error("crypto/rsa: verification error")]
    Rsa,
    #[error("x509: Ed25519 verification failure")]
    Ed25519,
    #[error("x509: cannot parse IP address of length {0}")]
    IpLength(usize),
}

/// Why `status.certificate` is not a chain of certificates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("only CERTIFICATE PEM blocks are allowed, found {0:?}")]
    BlockType(String),
    #[error("no PEM block headers are permitted")]
    Headers,
    #[error("x509: malformed certificate: {0}")]
    Malformed(x509_cert::der::Error),
    #[error("found CERTIFICATE PEM block containing 0 certificates")]
    Empty,
    #[error("must contain at least one CERTIFICATE PEM block")]
    NoBlock,
}

/// A parsed request: who it names and what names it asks for.
#[derive(Debug, Clone)]
pub struct CertificateRequest {
    /// The subject's CN (the last, as Go keeps it); empty without one.
    pub common_name: String,
    /// Every O, in order: the groups of a client certificate.
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub email_addresses: Vec<String>,
    pub ip_addresses: Vec<std::net::IpAddr>,
    pub uris: Vec<String>,
    req: CertReq,
    /// The DER of `certificationRequestInfo` as sent: what the signature covers.
    signed: Vec<u8>,
}

/// One PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub label: String,
    pub has_headers: bool,
    pub der: Vec<u8>,
}

/// The PEM blocks of `data`, as repeated `pem.Decode` finds them (junk around them ignored, a
/// malformed block skipped).
pub fn pem_blocks(data: &[u8]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut rest = data;
    while let Some((block, next)) = pem_decode(rest) {
        blocks.push(block);
        rest = next;
    }
    blocks
}

/// `certificates.ParseCSR`: the first PEM block must be a CERTIFICATE REQUEST holding a
/// PKCS#10 request.
pub fn parse(pem: &[u8]) -> Result<CertificateRequest, RequestError> {
    let block = pem_decode(pem).map(|(b, _)| b).filter(|b| b.label == "CERTIFICATE REQUEST");
    parse_der(&block.ok_or(RequestError::NotPem)?.der)
}

/// A PKCS#10 request in DER.
pub fn parse_der(der: &[u8]) -> Result<CertificateRequest, RequestError> {
    let req = CertReq::from_der(der).map_err(RequestError::Malformed)?;
    // The signed part as sent (re-encoding could reorder its attributes).
    let outer = AnyRef::from_der(der).map_err(RequestError::Malformed)?;
    let signed = SliceReader::new(outer.value())
        .and_then(|mut r| r.tlv_bytes().map(<[u8]>::to_vec))
        .map_err(RequestError::Malformed)?;
    let mut parsed = CertificateRequest {
        common_name: String::new(),
        organizations: Vec::new(),
        dns_names: Vec::new(),
        email_addresses: Vec::new(),
        ip_addresses: Vec::new(),
        uris: Vec::new(),
        req,
        signed,
    };
    for atav in parsed.req.info.subject.iter() {
        let text = || DirectoryString::try_from(&atav.value).map(|s| s.value().into_owned());
        if atav.oid == rfc4519::COMMON_NAME {
            parsed.common_name = text().map_err(RequestError::Malformed)?;
        } else if atav.oid == rfc4519::ORGANIZATION_NAME {
            parsed.organizations.push(text().map_err(RequestError::Malformed)?);
        }
    }
    if let Some(san) = requested_san(&parsed.req)? {
        parsed.read_san(&san)?;
    }
    Ok(parsed)
}

/// The subjectAltName extension an extensionRequest attribute asks for.
fn requested_san(req: &CertReq) -> Result<Option<SubjectAltName>, RequestError> {
    for attr in req.info.attributes.iter().filter(|a| a.oid == rfc5912::ID_EXTENSION_REQ) {
        for value in attr.values.iter() {
            let extensions: Vec<Extension> = value.decode_as().map_err(RequestError::Malformed)?;
            if let Some(san) = extensions.iter().find(|e| e.extn_id == rfc5280::ID_CE_SUBJECT_ALT_NAME) {
                let names = SubjectAltName::from_der(san.extn_value.as_bytes()).map_err(RequestError::Malformed)?;
                return Ok(Some(names));
            }
        }
    }
    Ok(None)
}

impl CertificateRequest {
    fn read_san(&mut self, san: &SubjectAltName) -> Result<(), RequestError> {
        for name in &san.0 {
            match name {
                GeneralName::DnsName(n) => self.dns_names.push(n.to_string()),
                GeneralName::Rfc822Name(n) => self.email_addresses.push(n.to_string()),
                GeneralName::UniformResourceIdentifier(n) => self.uris.push(n.to_string()),
                GeneralName::IpAddress(ip) => {
                    let ip = match ip.as_bytes() {
                        &[a, b, c, d] => std::net::IpAddr::from([a, b, c, d]),
                        bytes => <[u8; 16]>::try_from(bytes)
                            .map(std::net::IpAddr::from)
                            .map_err(|_| RequestError::IpLength(bytes.len()))?,
                    };
                    self.ip_addresses.push(ip);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `CheckSignature`: the request is signed by the key it carries.
    pub fn check_signature(&self) -> Result<(), RequestError> {
        let (algorithm, failure) = self.verification()?;
        let key = self.req.info.public_key.subject_public_key.as_bytes().ok_or(failure.clone())?;
        let signature = self.req.signature.as_bytes().ok_or(failure.clone())?;
        UnparsedPublicKey::new(algorithm, key).verify(&self.signed, signature).map_err(|_| failure)
    }

    /// ring's algorithm for this request's key and signature algorithm, and the error a bad
    /// signature is reported with.
    fn verification(&self) -> Result<(&'static dyn VerificationAlgorithm, RequestError), RequestError> {
        const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
        const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
        const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
        const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
        const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
        const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
        const RSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
        const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
        const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
        const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
        const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

        let key = &self.req.info.public_key.algorithm;
        let curve = key.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let algorithm: &'static dyn VerificationAlgorithm = match (key.oid, curve, self.req.algorithm.oid) {
            (EC_PUBLIC_KEY, Some(P256), ECDSA_SHA256) => &sig::ECDSA_P256_SHA256_ASN1,
            (EC_PUBLIC_KEY, Some(P256), ECDSA_SHA384) => &sig::ECDSA_P256_SHA384_ASN1,
            (EC_PUBLIC_KEY, Some(P384), ECDSA_SHA256) => &sig::ECDSA_P384_SHA256_ASN1,
            (EC_PUBLIC_KEY, Some(P384), ECDSA_SHA384) => &sig::ECDSA_P384_SHA384_ASN1,
            (RSA, _, RSA_SHA256) => &sig::RSA_PKCS1_2048_8192_SHA256,
            (RSA, _, RSA_SHA384) => &sig::RSA_PKCS1_2048_8192_SHA384,
            (RSA, _, RSA_SHA512) => &sig::RSA_PKCS1_2048_8192_SHA512,
            (RSA, _, RSA_SHA1) => return Err(RequestError::Sha1),
            (ED25519, _, ED25519) => &sig::ED25519,
            _ => return Err(RequestError::UnsupportedAlgorithm),
        };
        let failure = match key.oid {
            EC_PUBLIC_KEY => RequestError::Ecdsa,
            RSA => RequestError::Rsa,
            _ => RequestError::Ed25519,
        };
        Ok((algorithm, failure))
    }
}

/// Upstream's `validateCertificate`: one or more CERTIFICATE blocks without headers, each
/// holding one or more certificates (empty content is no certificate at all, and fine).
pub fn validate_certificate(pem: &[u8]) -> Result<(), CertificateError> {
    if pem.is_empty() {
        return Ok(());
    }
    let blocks = pem_blocks(pem);
    for block in &blocks {
        if block.label != "CERTIFICATE" {
            return Err(CertificateError::BlockType(block.label.clone()));
        }
        if block.has_headers {
            return Err(CertificateError::Headers);
        }
        let mut reader = SliceReader::new(&block.der).map_err(CertificateError::Malformed)?;
        let mut count = 0;
        while !reader.is_finished() {
            Certificate::decode(&mut reader).map_err(CertificateError::Malformed)?;
            count += 1;
        }
        if count == 0 {
            return Err(CertificateError::Empty);
        }
    }
    if blocks.is_empty() {
        return Err(CertificateError::NoBlock);
    }
    Ok(())
}

/// A line and what follows it, the line without its trailing spaces, tabs and CR (Go's
/// `getLine`).
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let end = line.iter().rposition(|b| !matches!(b, b' ' | b'\t' | b'\r')).map_or(0, |i| i + 1);
    (&line[..end], rest)
}

fn strip(data: &[u8], prefix: &[u8]) -> Option<usize> {
    data.starts_with(prefix).then_some(prefix.len())
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

/// Go's `pem.Decode`: the first well-formed block of `data` and what follows it.
fn pem_decode(data: &[u8]) -> Option<(Block, &[u8])> {
    const BEGIN: &[u8] = b"\n-----BEGIN ";
    const END: &[u8] = b"\n-----END ";
    const DASHES: &[u8] = b"-----";
    let mut rest = data;
    loop {
        rest = match strip(rest, &BEGIN[1..]) {
            Some(n) => &rest[n..],
            None => &rest[find(rest, BEGIN)? + BEGIN.len()..],
        };
        let (type_line, after_type) = line(rest);
        rest = after_type;
        let Some(label) = type_line.strip_suffix(DASHES) else { continue };
        let mut has_headers = false;
        loop {
            if rest.is_empty() {
                return None;
            }
            let (l, next) = line(rest);
            if !l.contains(&b':') {
                break;
            }
            has_headers = true;
            rest = next;
        }
        let (end, trailer) = match (!has_headers).then(|| strip(rest, &END[1..])).flatten() {
            Some(n) => (0, n),
            None => match find(rest, END) {
                Some(i) => (i, i + END.len()),
                None => continue,
            },
        };
        let after = &rest[trailer..];
        let want = label.len() + DASHES.len();
        if after.len() < want || !after[..want].starts_with(label) || !after[..want].ends_with(DASHES) {
            continue;
        }
        let (tail, next) = line(&after[want..]);
        if !tail.is_empty() {
            continue;
        }
        let body: Vec<u8> = rest[..end].iter().copied().filter(|b| !b" \t\r\n".contains(b)).collect();
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) else { continue };
        let label = String::from_utf8_lossy(label).into_owned();
        return Some((Block { label, has_headers, der }, next));
    }
}

/// Requests for tests, made with rcgen.
#[cfg(test)]
pub(crate) mod fixtures {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    /// A PEM request for `cn` in `orgs` (one O each) with `sans`, signed with a new key of `alg`.
    pub fn csr_with(cn: &str, orgs: &[&str], sans: Vec<SanType>, alg: &'static rcgen::SignatureAlgorithm) -> String {
        let key = KeyPair::generate_for(alg).expect("key");
        let mut params = CertificateParams::default();
        for o in orgs {
            params.distinguished_name.push(DnType::OrganizationName, *o);
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.serialize_request(&key).expect("csr").pem().expect("pem")
    }

    /// A P-256 request for `cn` in `orgs`.
    pub fn csr(cn: &str, orgs: &[&str]) -> String {
        csr_with(cn, orgs, vec![], &rcgen::PKCS_ECDSA_P256_SHA256)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{csr, csr_with};
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SanType};

    #[test]
    fn reads_subject_and_names() {
        let pem = csr_with(
            "system:node:n1",
            &["system:nodes"],
            vec![
                SanType::DnsName("n1.example".try_into().expect("dns")),
                SanType::IpAddress("10.0.0.1".parse().expect("ip")),
                SanType::Rfc822Name("a@b.c".try_into().expect("mail")),
                SanType::URI("spiffe://x/y".try_into().expect("uri")),
            ],
            &rcgen::PKCS_ECDSA_P256_SHA256,
        );
        let req = parse(pem.as_bytes()).expect("parses");
        assert_eq!(req.common_name, "system:node:n1");
        assert_eq!(req.organizations, ["system:nodes"]);
        assert_eq!(req.dns_names, ["n1.example"]);
        assert_eq!(req.ip_addresses, ["10.0.0.1".parse::<std::net::IpAddr>().expect("ip")]);
        assert_eq!(req.email_addresses, ["a@b.c"]);
        assert_eq!(req.uris, ["spiffe://x/y"]);
        req.check_signature().expect("self-signed");
    }

    #[test]
    fn checks_signatures_of_every_supported_key() {
        for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let pem = csr_with("bob", &["dev"], vec![], alg);
            let req = parse(pem.as_bytes()).expect("parses");
            req.check_signature().expect("valid");
            // A flipped bit of the signature: the key type's own failure.
            let block = &pem_blocks(pem.as_bytes())[0];
            let mut der = block.der.clone();
            let last = der.len() - 1;
            der[last] ^= 1;
            let tampered = parse_der(&der).expect("still parses");
            let want =
                if std::ptr::eq(alg, &rcgen::PKCS_ED25519) { RequestError::Ed25519 } else { RequestError::Ecdsa };
            assert_eq!(tampered.check_signature(), Err(want));
        }
    }

    /// The Kubernetes documentation's user request: an RSA key made by openssl (when present).
    #[test]
    fn checks_rsa_signatures() {
        let dir = std::env::temp_dir().join(format!("skiff-core-rsa-{}", std::process::id()));
        let csr = dir.join("u.csr");
        let made = std::fs::create_dir_all(&dir).is_ok()
            && std::process::Command::new("openssl")
                .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=myuser/O=dev", "-keyout"])
                .arg(dir.join("u.key"))
                .arg("-out")
                .arg(&csr)
                .output()
                .is_ok_and(|o| o.status.success());
        let pem = std::fs::read(&csr).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        if !made {
            eprintln!("openssl is not installed: skipping the RSA check");
            return;
        }
        let req = parse(&pem).expect("parses");
        assert_eq!((req.common_name.as_str(), req.organizations.as_slice()), ("myuser", &["dev".to_string()][..]));
        req.check_signature().expect("valid");
        let mut der = pem_blocks(&pem)[0].der.clone();
        let last = der.len() - 1;
        der[last] ^= 1;
        assert_eq!(parse_der(&der).expect("parses").check_signature(), Err(RequestError::Rsa));
    }

    #[test]
    fn refuses_what_is_not_a_request() {
        assert_eq!(parse(b"junk").err(), Some(RequestError::NotPem));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(parse(cert.as_bytes()).err(), Some(RequestError::NotPem));
        let garbage = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(matches!(parse(garbage.as_bytes()), Err(RequestError::Malformed(_))));
        assert!(RequestError::NotPem.to_string().contains("CERTIFICATE REQUEST"));
    }

    #[test]
    fn pem_as_go_reads_it() {
        let pem = "junk before\n-----BEGIN A-----\nAAEC\n-----END A-----\ntext\n-----BEGIN B-----\nProc-Type: 4\n\nAw==\n-----END B-----\n-----BEGIN C-----\nAA\n-----END D-----\n";
        let blocks = pem_blocks(pem.as_bytes());
        assert_eq!(
            blocks,
            [
                Block { label: "A".into(), has_headers: false, der: vec![0, 1, 2] },
                Block { label: "B".into(), has_headers: true, der: vec![3] },
            ]
        );
        assert_eq!(
            pem_blocks(b"-----BEGIN X-----\n-----END X-----"),
            [Block { label: "X".into(), has_headers: false, der: vec![] }]
        );
    }

    #[test]
    fn certificates_in_status() {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::default().self_signed(&key).expect("cert").pem();
        assert_eq!(validate_certificate(b""), Ok(()));
        assert_eq!(validate_certificate(cert.as_bytes()), Ok(()));
        assert_eq!(validate_certificate(format!("{cert}{cert}").as_bytes()), Ok(()));
        assert_eq!(validate_certificate(b"junk"), Err(CertificateError::NoBlock));
        let req = csr("bob", &[]);
        assert_eq!(
            validate_certificate(req.as_bytes()),
            Err(CertificateError::BlockType("CERTIFICATE REQUEST".into()))
        );
        let headers = cert.replacen("-----\n", "-----\nK: v\n\n", 1);
        assert_eq!(validate_certificate(headers.as_bytes()), Err(CertificateError::Headers));
        let empty = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
        assert_eq!(validate_certificate(empty.as_bytes()), Err(CertificateError::Empty));
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(validate_certificate(bad.as_bytes()), Err(CertificateError::Malformed(_))));
    }
}
