//! Which files are suites: the files given by name, and the
//! `*.egate-test.yaml` files found under the directories given.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// How suite files are named.
pub const SUITE_SUFFIX: &str = ".egate-test.yaml";

/// Every suite file under `paths`, sorted. A file given by name is taken
/// whatever its name; directories are searched recursively, skipping hidden
/// ones and cargo target directories (those holding CACHEDIR.TAG).
pub fn find_suites(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = BTreeSet::new();
    for path in paths {
        if path.is_file() {
            found.insert(path.clone());
        } else if path.is_dir() {
            let before = found.len();
            walk(path, &mut found)?;
            if found.len() == before {
                bail!("no *{SUITE_SUFFIX} files under {}", path.display());
            }
        } else {
            bail!("{} does not exist: give suite files or directories holding *{SUITE_SUFFIX} files", path.display());
        }
    }
    Ok(found.into_iter().collect())
}

fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if !name.starts_with('.') && !path.join("CACHEDIR.TAG").exists() {
                walk(&path, found)?;
            }
        } else if name.ends_with(SUITE_SUFFIX) && path.is_file() {
            found.insert(path);
        }
    }
    Ok(())
}
