//! cosign signatures, verified with public keys, offline.
//!
//! `cosign sign --key` stores a signature of the artifact `REPO@sha256:HEX`
//! in the same repository under the tag `sha256-HEX.sig`: an OCI manifest
//! whose layers are simple-signing payloads (media type
//! [`SIMPLE_SIGNING_MEDIA_TYPE`]), each with its base64 ECDSA signature in
//! the annotation [`SIGNATURE_ANNOTATION`]. A module verifies when one
//! payload names its manifest digest and its signature verifies with one
//! of the keys.
//!
//! A verification file lists the keys:
//!
//! ```yaml
//! apiVersion: egate.dev/v1
//! kind: ModuleVerification
//! keys:
//!   - name: platform-team
//!     path: cosign.pub          # relative to this file
//!   - name: security
//!     publicKey: |
//!       -----BEGIN PUBLIC KEY-----
//!       ...
//! ```

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

use crate::OciError;

/// Media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation of a payload layer holding its base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The tag cosign stores the signatures of `digest` under.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// The keys of one verification file.
#[derive(Debug, Clone)]
pub struct Verification {
    /// The file they come from.
    pub file: PathBuf,
    keys: Vec<(String, VerifyingKey)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerificationFile {
    api_version: String,
    kind: String,
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyEntry {
    name: String,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    public_key: Option<String>,
}

/// One signature of a module: the payload and its base64 signature.
#[derive(Debug, Clone)]
pub struct SignedPayload {
    /// The simple-signing JSON, as stored.
    pub payload: Vec<u8>,
    /// The annotation's base64 DER (or raw r||s) ECDSA signature.
    pub signature: String,
}

impl Verification {
    /// Reads a verification file and its keys.
    pub fn read(file: &Path) -> Result<Self, OciError> {
        let error = |message: String| OciError::File { path: file.to_path_buf(), message };
        let text =
            std::fs::read_to_string(file).map_err(|e| error(format!("cannot read the verification file: {e}")))?;
        let parsed: VerificationFile = serde_saphyr::from_str(&text).map_err(|e| {
            error(format!("not a verification file ({e}): write apiVersion: egate.dev/v1, kind: ModuleVerification, keys: [{{name, path}}]"))
        })?;
        if parsed.api_version != egate_engine::manifest::API_VERSION || parsed.kind != "ModuleVerification" {
            return Err(error("write apiVersion: egate.dev/v1 and kind: ModuleVerification".into()));
        }
        if parsed.keys.is_empty() {
            return Err(error("it lists no keys: a module could never verify; add keys: [{name, path}]".into()));
        }
        let dir = file.parent().unwrap_or(Path::new("."));
        let mut keys = Vec::new();
        for entry in parsed.keys {
            let pem = match (&entry.path, entry.public_key) {
                (Some(path), None) => std::fs::read_to_string(dir.join(path)).map_err(|e| {
                    error(format!("key {:?}: cannot read {}: {e}", entry.name, dir.join(path).display()))
                })?,
                (None, Some(pem)) => pem,
                _ => return Err(error(format!("key {:?}: give exactly one of path and publicKey", entry.name))),
            };
            let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
                error(format!(
                    "key {:?} is not an ECDSA P-256 public key in PEM ({e}): give the cosign.pub `cosign generate-key-pair` writes",
                    entry.name
                ))
            })?;
            keys.push((entry.name, key));
        }
        Ok(Self { file: file.to_path_buf(), keys })
    }

    /// The names of the keys, for messages.
    pub fn key_names(&self) -> String {
        self.keys.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The name of the key that signed `digest` in one of `signatures`, or
    /// why none did.
    pub fn verify(&self, digest: &str, signatures: &[SignedPayload]) -> Result<&str, String> {
        if signatures.is_empty() {
            return Err(format!("it has no cosign signature (no tag {} in its repository)", signature_tag(digest)));
        }
        let mut reasons = Vec::new();
        for signed in signatures {
            let Some(signature) = decode_signature(&signed.signature) else {
                reasons.push("a signature is not base64 ECDSA".to_string());
                continue;
            };
            let Some((name, _)) = self.keys.iter().find(|(_, key)| key.verify(&signed.payload, &signature).is_ok())
            else {
                reasons.push("a signature verifies with none of the keys".to_string());
                continue;
            };
            match signed_digest(&signed.payload) {
                Some(signed) if signed == digest => return Ok(name),
                Some(signed) => reasons.push(format!("a signature by key {name:?} is of {signed}, not of this digest")),
                None => reasons.push("a signed payload is not cosign simple-signing JSON".to_string()),
            }
        }
        reasons.dedup();
        Err(format!("no signature is valid: {}", reasons.join("; ")))
    }
}

fn decode_signature(text: &str) -> Option<Signature> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
    Signature::from_der(&bytes).or_else(|_| Signature::from_slice(&bytes)).ok()
}

/// `critical.image.docker-manifest-digest` of a simple-signing payload of
/// type `cosign container image signature`.
fn signed_digest(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let critical = value.get("critical")?;
    (critical.pointer("/type")?.as_str()? == "cosign container image signature").then_some(())?;
    Some(critical.pointer("/image/docker-manifest-digest")?.as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_file_needs_keys_it_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("verify.yaml");
        std::fs::write(
            &file,
            "apiVersion: egate.dev/v1\nkind: ModuleVerification\nkeys: [{name: team, path: absent.pub}]\n",
        )
        .unwrap();
        let err = Verification::read(&file).unwrap_err().to_string();
        assert!(err.contains("key \"team\": cannot read"), "{err}");
        std::fs::write(dir.path().join("absent.pub"), "not a key").unwrap();
        let err = Verification::read(&file).unwrap_err().to_string();
        assert!(err.contains("is not an ECDSA P-256 public key"), "{err}");
    }

    #[test]
    fn signature_tags_follow_cosign() {
        assert_eq!(signature_tag("sha256:abc"), "sha256-abc.sig");
    }
}
