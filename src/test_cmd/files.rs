//! The files a suite names (policies, requests, pods, expected objects):
//! each name is relative to the suite file, and each file is read and
//! checked while the suite is parsed, so an error carries the line and
//! column of the name.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::debug_request::read_pod;

thread_local! {
    /// The directory of the suite being read: file names in it are relative to it.
    static SUITE_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Runs `parse` (the deserialisation of a suite) with file names taken as
/// relative to `dir`. serde gives a `Deserialize` impl no context of its
/// own, hence the thread-local.
pub fn relative_to<T>(dir: PathBuf, parse: impl FnOnce() -> T) -> T {
    SUITE_DIR.with(|d| *d.borrow_mut() = Some(dir));
    let parsed = parse();
    SUITE_DIR.with(|d| *d.borrow_mut() = None);
    parsed
}

/// A kind of file a suite names, read when the suite is read.
pub trait LoadFile: Sized {
    /// What the file should hold, for messages.
    const WHAT: &'static str;
    fn load(path: &Path) -> Result<Self>;
}

/// A file name in a suite, as written, and what the file holds.
pub struct FileRef<T> {
    pub written: String,
    pub loaded: T,
}

impl<T> Serialize for FileRef<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

impl<'de, T: LoadFile> Deserialize<'de> for FileRef<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileVisitor<T>(PhantomData<T>);
        impl<T: LoadFile> Visitor<'_> for FileVisitor<T> {
            type Value = FileRef<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "the path of {}, relative to the suite file", T::WHAT)
            }
            fn visit_str<E: de::Error>(self, written: &str) -> Result<FileRef<T>, E> {
                if written.is_empty() {
                    return Err(E::custom(format!("empty file name: give the path of {}", T::WHAT)));
                }
                let path = SUITE_DIR.with(|dir| dir.borrow().as_deref().unwrap_or(Path::new("")).join(written));
                let loaded = T::load(&path).map_err(|e| E::custom(format!("{e:#}")))?;
                Ok(FileRef { written: written.to_string(), loaded })
            }
        }
        deserializer.deserialize_str(FileVisitor(PhantomData))
    }
}

/// An AdmissionReview file, as JSON bytes.
pub struct ReviewFile(pub Vec<u8>);

impl LoadFile for ReviewFile {
    const WHAT: &'static str = "an AdmissionReview (JSON or YAML)";
    fn load(path: &Path) -> Result<Self> {
        let bytes = crate::eval::read_review(path)?;
        if let Err(e) = egate_engine::review::Review::parse(&bytes) {
            bail!("request file {}: {e}", path.display());
        }
        Ok(Self(bytes))
    }
}

/// A Pod file.
pub struct PodFile(pub Value);

impl LoadFile for PodFile {
    const WHAT: &'static str = "a Pod (YAML or JSON)";
    fn load(path: &Path) -> Result<Self> {
        read_pod(path).map(Self)
    }
}

/// The expected object after the patch.
pub struct ObjectFile(pub Value);

impl LoadFile for ObjectFile {
    const WHAT: &'static str = "the expected object after the patch (YAML or JSON)";
    fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let value: Value = egate_engine::yaml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is neither JSON nor YAML: {e}", path.display()))?;
        Ok(Self(value))
    }
}

/// A policy manifest the suite loads.
pub struct PolicyPath(pub PathBuf);

impl LoadFile for PolicyPath {
    const WHAT: &'static str = "a policy manifest";
    fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            bail!("there is no policy manifest {} (paths are relative to the suite file)", path.display());
        }
        Ok(Self(path.to_path_buf()))
    }
}
