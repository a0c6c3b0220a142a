//! Which files are suites: the files given by name, and the
//! `*.egate-test.yaml` files found under the directories given.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use walkdir::{DirEntry, WalkDir};

/// How suite files are named.
pub const SUITE_SUFFIX: &str = ".egate-test.yaml";

/// Why the suites to run could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{} does not exist: give suite files or directories holding *{SUITE_SUFFIX} files", path.display())]
    Missing { path: PathBuf },
    #[error("no *{SUITE_SUFFIX} files under {}", dir.display())]
    NoSuites { dir: PathBuf },
    #[error("cannot read directory {}: {error}", dir.display())]
    Unreadable { dir: PathBuf, error: io::Error },
}

/// Every suite file under `paths`, sorted and each once. A file given by
/// name is taken whatever its name; directories are searched recursively,
/// skipping hidden ones and cargo target directories (those holding
/// CACHEDIR.TAG). A directory without any suite is an error, as it is
/// most likely a wrong path.
pub fn find_suites(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DiscoverError> {
    let mut found = BTreeSet::new();
    for path in paths {
        if path.is_file() {
            found.insert(path.clone());
        } else if path.is_dir() {
            let suites = suites_under(path)?;
            if suites.is_empty() {
                return Err(DiscoverError::NoSuites { dir: path.clone() });
            }
            found.extend(suites);
        } else {
            return Err(DiscoverError::Missing { path: path.clone() });
        }
    }
    Ok(found.into_iter().collect())
}

/// The suite files under `dir`, at any depth.
fn suites_under(dir: &Path) -> Result<Vec<PathBuf>, DiscoverError> {
    let mut suites = Vec::new();
    let walk = WalkDir::new(dir).into_iter().filter_entry(|entry| entry.depth() == 0 || !is_skipped_dir(entry));
    for entry in walk {
        let entry = entry.map_err(|e| unreadable(dir, e))?;
        if is_suite(&entry) {
            suites.push(entry.into_path());
        }
    }
    Ok(suites)
}

/// A hidden directory, or a cargo target directory.
fn is_skipped_dir(entry: &DirEntry) -> bool {
    entry.file_type().is_dir()
        && (entry.file_name().to_string_lossy().starts_with('.') || entry.path().join("CACHEDIR.TAG").exists())
}

/// A file (or a link to one) named `*.egate-test.yaml`.
fn is_suite(entry: &DirEntry) -> bool {
    !entry.file_type().is_dir() && entry.file_name().to_string_lossy().ends_with(SUITE_SUFFIX) && entry.path().is_file()
}

fn unreadable(root: &Path, error: walkdir::Error) -> DiscoverError {
    let dir = error.path().unwrap_or(root).to_path_buf();
    let message = error.to_string();
    // Not an I/O error only for a symbolic link loop, and links are not followed.
    let error = error.into_io_error().unwrap_or_else(|| io::Error::other(message));
    DiscoverError::Unreadable { dir, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, file: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }

    #[test]
    fn suites_are_sorted_and_hidden_and_target_directories_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in ["z-b/c.egate-test.yaml", "z/a/b.egate-test.yaml", "z/.dot.egate-test.yaml", "a.egate-test.yaml"] {
            touch(root, file);
        }
        touch(root, "z/notes.yaml");
        touch(root, ".hidden/h.egate-test.yaml");
        touch(root, "target/CACHEDIR.TAG");
        touch(root, "target/debug/t.egate-test.yaml");
        let found = find_suites(&[root.to_path_buf()]).unwrap();
        let names: Vec<_> = found.iter().map(|p| p.strip_prefix(root).unwrap().to_str().unwrap()).collect();
        assert_eq!(
            names,
            ["a.egate-test.yaml", "z/.dot.egate-test.yaml", "z/a/b.egate-test.yaml", "z-b/c.egate-test.yaml"]
        );
    }

    #[test]
    fn a_file_given_by_name_counts_whatever_its_name_and_each_suite_runs_once() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "s.egate-test.yaml");
        touch(dir.path(), "other.yaml");
        let other = dir.path().join("other.yaml");
        let suite = dir.path().join("s.egate-test.yaml");
        let found = find_suites(&[dir.path().to_path_buf(), other.clone(), suite.clone(), dir.path().to_path_buf()]);
        assert_eq!(found.unwrap(), [other, suite]);
    }

    #[test]
    fn a_missing_path_or_a_directory_without_suites_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = find_suites(std::slice::from_ref(&missing)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} does not exist: give suite files or directories holding *.egate-test.yaml files",
                missing.display()
            )
        );
        touch(dir.path(), "notes.yaml");
        let err = find_suites(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert_eq!(err, format!("no *.egate-test.yaml files under {}", dir.path().display()));
    }
}
