//! Making cosign signatures with a P-256 private key, offline: what
//! `cosign sign --key KEY --tlog-upload=false` stores, so that
//! `cosign verify --key PUB --insecure-ignore-tlog=true` and egate's own
//! verification ([`crate::sign`]) accept it.
//!
//! A key file is PEM, one of:
//!
//! - `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older `ENCRYPTED COSIGN
//!   PRIVATE KEY`): what `cosign generate-key-pair` writes, a PKCS#8 key
//!   sealed with NaCl secretbox under a key scrypt derives from the
//!   password (`COSIGN_PASSWORD`);
//! - `PRIVATE KEY`: unencrypted PKCS#8 (`openssl genpkey -algorithm EC
//!   -pkeyopt ec_paramgen_curve:P-256`);
//! - `EC PRIVATE KEY`: unencrypted SEC1 (`openssl ecparam -name prime256v1
//!   -genkey`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use serde::Deserialize;

use crate::OciError;

/// A P-256 signing key read from a file.
pub struct Signer {
    /// The key file, for messages.
    pub file: PathBuf,
    key: SigningKey,
}

/// The sealed key inside an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM
/// (go-securesystemslib's `encrypted` format).
#[derive(Deserialize)]
struct SealedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

impl Signer {
    /// Reads a key file; `password` opens an encrypted cosign key (the
    /// empty password is one cosign allows).
    pub fn read(file: &Path, password: Option<&str>) -> Result<Self, OciError> {
        let error = |message: String| OciError::File { path: file.to_path_buf(), message };
        let text = std::fs::read_to_string(file).map_err(|e| error(format!("cannot read the signing key: {e}")))?;
        let (label, der) = pem::decode_vec(text.trim().as_bytes()).map_err(|e| {
            error(format!("not a PEM private key ({e}): give the cosign.key `cosign generate-key-pair` writes, or a PKCS#8 or SEC1 P-256 key"))
        })?;
        let not_p256 =
            |e: String| error(format!("not an ECDSA P-256 private key ({e}): egate signs with P-256 keys only"));
        let key = match label {
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let Some(password) = password else {
                    return Err(error(
                        "an encrypted cosign key: set COSIGN_PASSWORD to its password (empty if it has none)".into(),
                    ));
                };
                let pkcs8 = unseal(&der, password).map_err(error)?;
                SigningKey::from_pkcs8_der(&pkcs8).map_err(|e| not_p256(e.to_string()))?
            }
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der).map_err(|e| not_p256(e.to_string()))?,
            "EC PRIVATE KEY" => {
                p256::SecretKey::from_sec1_der(&der).map(SigningKey::from).map_err(|e| not_p256(e.to_string()))?
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(error(
                    "an encrypted PKCS#8 key, which egate does not open: decrypt it (openssl pkcs8 -in KEY -out plain.pem), or use a cosign key".into(),
                ));
            }
            other => {
                return Err(error(format!(
                    "a PEM {other:?}, not a private key: give a cosign.key, or a PKCS#8 or SEC1 P-256 key"
                )));
            }
        };
        Ok(Self { file: file.to_path_buf(), key })
    }

    /// The public key in PEM (what a verification file lists).
    pub fn public_key_pem(&self) -> String {
        self.key.verifying_key().to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes")
    }

    /// The base64 DER ECDSA-SHA256 signature of `payload`, as cosign writes it.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.key.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// The PKCS#8 key sealed in `json` with `password`.
fn unseal(json: &[u8], password: &str) -> Result<Vec<u8>, String> {
    let sealed: SealedKey =
        serde_json::from_slice(json).map_err(|e| format!("an encrypted cosign key that does not parse: {e}"))?;
    if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
        return Err(format!(
            "an encrypted cosign key with kdf {:?} and cipher {:?}, where egate knows scrypt and nacl/secretbox",
            sealed.kdf.name, sealed.cipher.name
        ));
    }
    let b64 = |field: &str, text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("an encrypted cosign key whose {field} is not base64: {e}"))
    };
    let (salt, nonce, ciphertext) =
        (b64("salt", &sealed.kdf.salt)?, b64("nonce", &sealed.cipher.nonce)?, b64("ciphertext", &sealed.ciphertext)?);
    let KdfParams { n, r, p } = sealed.kdf.params;
    let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
    let params =
        (n.is_power_of_two() && log_n <= 20).then(|| scrypt::Params::new(log_n, r, p, 32).ok()).flatten().ok_or_else(
            || format!("an encrypted cosign key with scrypt parameters N={n} r={r} p={p} egate does not use"),
        )?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key).expect("32 bytes is a valid scrypt output length");
    if nonce.len() != 24 {
        return Err(format!("an encrypted cosign key whose nonce has {} bytes, not 24", nonce.len()));
    }
    crypto_secretbox::XSalsa20Poly1305::new(&key.into())
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| {
            "the password does not open this cosign key: set COSIGN_PASSWORD to the one it was made with".into()
        })
}

/// The simple-signing payload of `digest` in `repository`
/// (`REGISTRY/REPOSITORY`), with cosign's field order.
pub fn simple_signing_payload(repository: &str, digest: &str) -> Vec<u8> {
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&payload).expect("JSON serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SignedPayload;

    #[test]
    fn a_signature_verifies_with_the_public_key_and_names_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        // SEC1 (openssl ecparam -genkey) and PKCS#8 forms of one key.
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let sec1 = dir.path().join("sec1.pem");
        std::fs::write(&sec1, secret.to_sec1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        let signer = Signer::read(&sec1, None).unwrap();
        let pkcs8 = dir.path().join("pkcs8.pem");
        std::fs::write(
            &pkcs8,
            p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&secret, LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        assert_eq!(Signer::read(&pkcs8, None).unwrap().public_key_pem(), signer.public_key_pem());
        let public = dir.path().join("key.pub");
        std::fs::write(&public, signer.public_key_pem()).unwrap();
        let file = dir.path().join("verify.yaml");
        std::fs::write(&file, "apiVersion: egate.dev/v1\nkind: ModuleVerification\nkeys: [{name: k, path: key.pub}]\n")
            .unwrap();
        let verification = crate::Verification::read(&file).unwrap();
        let payload = simple_signing_payload("127.0.0.1:5000/policies/p", "sha256:abc");
        let signed = [SignedPayload { signature: signer.sign(&payload), payload }];
        assert_eq!(verification.verify("sha256:abc", &signed), Ok("k"));
        assert!(verification.verify("sha256:def", &signed).is_err());

        let err = Signer::read(&public, None).err().unwrap().to_string();
        assert!(err.contains("key.pub") && err.contains("not a private key"), "{err}");
    }

    #[test]
    fn an_encrypted_key_needs_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cosign.key");
        std::fs::write(
            &file,
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = Signer::read(&file, None).err().unwrap().to_string();
        assert!(err.contains("cosign.key") && err.contains("COSIGN_PASSWORD"), "{err}");
    }
}
