//! Modules pulled from registries, on disk by digest, beside the compiled-
//! module cache and under its ownership rules: used only when the
//! directory and the entry belong to this process's user and no one else
//! may write them. Every read checks the bytes against the digests that
//! name them, so a corrupt entry is pulled again, never loaded.
//!
//! Layout: `oci/manifests/sha256/HEX` (the OCI manifest as the registry
//! sent it), `oci/blobs/sha256/HEX` (the module layer) and
//! `oci/signatures/sha256/HEX` (the cosign signatures that verified the
//! manifest `HEX`, checked with the keys again on every load).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use egate_engine::owned_by_us_alone;

use crate::sign::SignedPayload;

/// The digest-addressed store.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// A store in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `oci/` beside the compiled modules (`$EGATE_CACHE_DIR`, ...).
    pub fn default_dir() -> Option<PathBuf> {
        egate_engine::ModuleCache::default_dir().map(|dir| dir.join("oci"))
    }

    /// The manifest named `digest`, when a sound copy is stored.
    pub fn manifest(&self, digest: &str) -> Option<Vec<u8>> {
        self.read(&self.path("manifests", digest)?, digest)
    }

    /// The blob named `digest`, when a sound copy is stored.
    pub fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.read(&self.path("blobs", digest)?, digest)
    }

    /// Stores a manifest and its module (a failure to store is not an error:
    /// the store only saves pulls).
    pub fn put(&self, manifest_digest: &str, manifest: &[u8], blob_digest: &str, blob: &[u8]) {
        // The blob first: a manifest is stored only with what it names.
        if self.write("blobs", blob_digest, blob) {
            self.write("manifests", manifest_digest, manifest);
        }
    }

    /// The cosign signatures kept for the module of manifest `digest`. They
    /// are no trust root: each is verified with the keys on every load.
    pub fn signatures(&self, digest: &str) -> Option<Vec<SignedPayload>> {
        let path = self.path("signatures", digest)?;
        let trusted = [Some(self.dir.as_path()), path.parent(), Some(path.as_path())]
            .into_iter()
            .all(|p| p.is_some_and(owned_by_us_alone));
        let kept: Vec<(String, String)> =
            serde_json::from_slice(&std::fs::read(trusted.then_some(&path)?).ok()?).ok()?;
        let base64 = base64::engine::general_purpose::STANDARD;
        kept.into_iter()
            .map(|(payload, signature)| Some(SignedPayload { payload: base64.decode(payload).ok()?, signature }))
            .collect()
    }

    /// Keeps the signatures that verified a module, for loads without network.
    pub fn put_signatures(&self, digest: &str, signatures: &[SignedPayload]) {
        let base64 = base64::engine::general_purpose::STANDARD;
        let kept: Vec<(String, &str)> =
            signatures.iter().map(|s| (base64.encode(&s.payload), s.signature.as_str())).collect();
        self.write("signatures", digest, &serde_json::to_vec(&kept).expect("strings serialise"));
    }

    fn path(&self, kind: &str, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:").filter(|_| crate::reference::is_sha256(digest))?;
        Some(self.dir.join(kind).join("sha256").join(hex))
    }

    fn read(&self, path: &Path, digest: &str) -> Option<Vec<u8>> {
        let trusted =
            [Some(self.dir.as_path()), path.parent(), Some(path)].into_iter().all(|p| p.is_some_and(owned_by_us_alone));
        if !trusted {
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        (crate::digest(&bytes) == digest).then_some(bytes)
    }

    fn write(&self, kind: &str, digest: &str, bytes: &[u8]) -> bool {
        use std::os::unix::fs::DirBuilderExt;
        let Some(path) = self.path(kind, digest) else { return false };
        let Some(parent) = path.parent() else { return false };
        if std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).is_err()
            || ![self.dir.as_path(), parent].into_iter().all(owned_by_us_alone)
        {
            return false;
        }
        // Write then rename, so a reader never sees half an entry.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, &path).is_ok() {
            return true;
        }
        let _ = std::fs::remove_file(&tmp);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked_against_their_digest_and_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("oci"));
        let (manifest, blob) = (b"{}".as_slice(), b"\0asm".as_slice());
        let (m, b) = (crate::digest(manifest), crate::digest(blob));
        store.put(&m, manifest, &b, blob);
        assert_eq!(store.manifest(&m).as_deref(), Some(manifest));
        assert_eq!(store.blob(&b).as_deref(), Some(blob));

        let path = store.path("blobs", &b).unwrap();
        std::fs::write(&path, b"\0asn").unwrap();
        assert!(store.blob(&b).is_none(), "an altered entry is not used");

        store.put(&m, manifest, &b, blob);
        std::fs::set_permissions(dir.path().join("oci"), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(store.manifest(&m).is_none(), "a directory others may write is not trusted");
    }
}
