//! The key that signs service-account tokens: an RSA key made once and kept as kubeadm keeps
//! its own (`DATA_DIR/pki/sa.key`, PKCS#1, 0600, and `sa.pub` for verifiers outside), its key
//! ID as kube-apiserver derives it, and its public half as a JSON Web Key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::EncodePublicKey;
use rsa::pkcs8::LineEnding;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Digest;
use std::path::{Path, PathBuf};

/// kubeadm's size for the service-account key.
const BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an RSA private key in PKCS#1 PEM: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("generating the service-account signing key: {0}")]
    Generate(#[source] rsa::Error),
    #[error("encoding the service-account signing key: {0}")]
    Encode(String),
}

/// The signing key and what verifiers are told of it.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// base64url(SHA-256(the PKIX public key)): the `kid` of tokens and of the JWK.
    pub kid: String,
    /// The modulus and exponent, base64url, as a JWK carries them.
    n: String,
    e: String,
}

/// A JSON Web Key as kube-apiserver serves one (go-jose's field order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Jwk {
    #[serde(rename = "use")]
    pub use_: String,
    pub kty: String,
    pub kid: String,
    pub alg: String,
    pub n: String,
    pub e: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_path_buf(), source }
}

/// Write `contents` to `path` readable by its owner only (through a renamed temporary file, so a
/// crash never leaves half a key).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
    f.write_all(contents).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl SigningKey {
    /// The key in `dir/sa.key`, made (with `dir/sa.pub`) on first use.
    pub fn load_or_create(dir: &Path) -> Result<SigningKey, KeyError> {
        let path = dir.join("sa.key");
        match std::fs::read_to_string(&path) {
            Ok(pem) => {
                let key = rsa::PrivateKey::from_pkcs1_pem(&pem)
                    .map_err(|e| KeyError::Malformed { path: path.clone(), reason: e.to_string() })?;
                Self::from_key(&key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = generate()?;
                let pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| KeyError::Encode(e.to_string()))?;
                let public = key
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| KeyError::Encode(e.to_string()))?;
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                write_private(&dir.join("sa.pub"), public.as_bytes())?;
                write_private(&path, pem.as_bytes())?;
                Self::from_key(&key)
            }
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn from_key(key: &rsa::PrivateKey) -> Result<SigningKey, KeyError> {
        let der = key.to_pkcs1_der().map_err(|e| KeyError::Encode(e.to_string()))?;
        let public = key.to_public_key();
        let pkix = public.to_public_key_der().map_err(|e| KeyError::Encode(e.to_string()))?;
        let (n, e) = (public.n_bytes(), public.e_bytes());
        Ok(SigningKey {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            decoding: DecodingKey::from_rsa_raw_components(&n, &e),
            kid: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(pkix.as_bytes())),
            n: URL_SAFE_NO_PAD.encode(&n),
            e: URL_SAFE_NO_PAD.encode(&e),
        })
    }

    /// A compact JWS of `claims`, RS256 with this key's `kid` (no `typ`, as kube-apiserver's).
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, jsonwebtoken::errors::Error> {
        let header = Header { typ: None, kid: Some(self.kid.clone()), ..Header::new(Algorithm::RS256) };
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// The claims of `token` if this key signed it (RS256 only); nothing else is checked here.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, jsonwebtoken::errors::Error> {
        let mut only_signature = jsonwebtoken::Validation::new(Algorithm::RS256);
        only_signature.required_spec_claims.clear();
        only_signature.validate_exp = false;
        only_signature.validate_nbf = false;
        only_signature.validate_aud = false;
        jsonwebtoken::decode::<T>(token, &self.decoding, &only_signature).map(|data| data.claims)
    }

    /// The public key as the JWKS lists it.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            use_: "sig".into(),
            kty: "RSA".into(),
            kid: self.kid.clone(),
            alg: "RS256".into(),
            n: self.n.clone(),
            e: self.e.clone(),
        }
    }
}

fn generate() -> Result<rsa::PrivateKey, KeyError> {
    // The operating system's generator, as the CA's serial numbers use (`signer`).
    let mut rng = p256::elliptic_curve::common::getrandom::SysRng;
    rsa::PrivateKey::new(&mut rng, BITS).map_err(KeyError::Generate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SigningKey::load_or_create(dir.path()).expect("key");
        for file in ["sa.key", "sa.pub"] {
            let mode = std::fs::metadata(dir.path().join(file)).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let public = std::fs::read_to_string(dir.path().join("sa.pub")).expect("sa.pub");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
        let again = SigningKey::load_or_create(dir.path()).expect("key again");
        assert_eq!(key.kid, again.kid);
        assert_eq!(key.jwk(), again.jwk());
        assert_eq!(key.jwk().e, "AQAB");
        assert_eq!(key.kid.len(), 43, "a SHA-256 in base64url");
        let token = key.sign(&serde_json::json!({"sub": "x"})).expect("sign");
        let claims: serde_json::Value = again.verify(&token).expect("verify");
        assert_eq!(claims["sub"], "x");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!((header.alg, header.kid, header.typ), (Algorithm::RS256, Some(key.kid.clone()), None));
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sa.key"), "not a key").expect("write");
        let err = SigningKey::load_or_create(dir.path()).err().expect("fails");
        assert!(err.to_string().contains("sa.key: not an RSA private key"), "{err}");
    }
}
