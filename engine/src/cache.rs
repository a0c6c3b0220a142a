//! On-disk cache of compiled modules, so start-up takes milliseconds.
//!
//! An entry's name is the sha256 of the module bytes and of the engine's
//! compatibility hash (wasmtime version, settings, CPU features). Its file
//! holds the sha256 of the compiled artifact, then the artifact: an entry
//! whose checksum does not match (truncated, corrupt) is ignored and
//! rebuilt, never handed to wasmtime.
//!
//! A compiled artifact is native code, so the checksum alone cannot stop
//! someone who can write the directory. The cache is used only when the
//! directory and the entry belong to this process's user and no one else
//! may write them (the directory is created with mode 0700); otherwise
//! modules are compiled afresh.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::sandbox::ModuleError;

/// Compiled modules on disk, for one engine configuration.
pub struct ModuleCache {
    dir: PathBuf,
    engine: Engine,
    engine_key: u64,
}

impl ModuleCache {
    /// `$EGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/egate`, else `~/.cache/egate`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("EGATE_CACHE_DIR") {
            return (!dir.is_empty()).then(|| PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
        Some(base.join("egate"))
    }

    /// A cache in `dir` for modules compiled by `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self { dir, engine: engine.clone(), engine_key: hasher.finish() }
    }

    /// The module from the cache when a sound entry exists, else compiled
    /// and stored (a failure to store is not an error: the cache is optional).
    pub fn get_or_compile(&self, wasm: &[u8]) -> Result<Module, ModuleError> {
        let path = self.entry_path(wasm);
        if let Some(module) = self.read(&path) {
            return Ok(module);
        }
        let module = Module::new(&self.engine, wasm).map_err(|e| ModuleError::Invalid(format!("{e:#}")))?;
        if let Ok(artifact) = module.serialize() {
            self.write(&path, &artifact);
        }
        Ok(module)
    }

    fn entry_path(&self, wasm: &[u8]) -> PathBuf {
        let mut key = Sha256::new();
        key.update(wasm);
        key.update(self.engine_key.to_le_bytes());
        self.dir.join(format!("{}.cwasm", hex(&key.finalize())))
    }

    fn read(&self, path: &Path) -> Option<Module> {
        if !owned_by_us_alone(&self.dir) || !owned_by_us_alone(path) {
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        let (checksum, artifact) = bytes.split_at_checked(32)?;
        if Sha256::digest(artifact).as_slice() != checksum {
            return None;
        }
        // SAFETY: the artifact is one this engine configuration serialised
        // (the key covers its compatibility hash) and its checksum matches
        // what was written, so it is not truncated or altered.
        unsafe { Module::deserialize(&self.engine, artifact) }.ok()
    }

    fn write(&self, path: &Path, artifact: &[u8]) {
        use std::os::unix::fs::DirBuilderExt;
        if std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).is_err()
            || !owned_by_us_alone(&self.dir)
        {
            return;
        }
        let mut bytes = Sha256::digest(artifact).to_vec();
        bytes.extend_from_slice(artifact);
        // Write then rename, so a reader never sees half an entry.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &bytes).is_ok() && std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Whether `path` belongs to this process's user and only it may write it:
/// the rule for trusting what a cache directory holds.
pub fn owned_by_us_alone(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(ours), Ok(meta)) = (std::fs::metadata("/proc/self"), std::fs::symlink_metadata(path)) else {
        return false;
    };
    meta.uid() == ours.uid() && meta.mode() & 0o022 == 0
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"(module (func (export "f") (result i32) i32.const 7))"#;

    #[test]
    fn corrupt_or_foreign_entries_are_rebuilt_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = ModuleCache::new(dir.path().join("cache"), &engine);
        let wasm = wat::parse_str(MODULE).unwrap();
        cache.get_or_compile(&wasm).unwrap();
        let entry = cache.entry_path(&wasm);
        assert!(cache.read(&entry).is_some(), "a sound entry is used");

        let mut bytes = std::fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&entry, &bytes).unwrap();
        assert!(cache.read(&entry).is_none(), "a corrupt entry is ignored");
        cache.get_or_compile(&wasm).unwrap();
        assert!(cache.read(&entry).is_some(), "and rebuilt");

        std::fs::set_permissions(dir.path().join("cache"), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(cache.read(&entry).is_none(), "a directory others may write is not trusted");
    }
}
