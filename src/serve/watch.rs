//! Noticing that files changed, by polling their metadata: what the policy
//! and certificate reloads use. Polling works the same for files rewritten
//! in place, renamed over, and for Kubernetes' ConfigMap and Secret volumes
//! (whose files are symlinks swapped to a new directory on update).

use std::path::PathBuf;
use std::time::SystemTime;

/// What a list of files looks like at one moment: per file its modification
/// time, length and inode (symlinks followed), or `None` when it cannot be
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<Option<(SystemTime, u64, u64)>>);

impl Fingerprint {
    /// The files' metadata now.
    pub fn of(paths: &[PathBuf]) -> Self {
        Self(
            paths
                .iter()
                .map(|path| {
                    let meta = std::fs::metadata(path).ok()?;
                    Some((meta.modified().ok()?, meta.len(), inode(&meta)))
                })
                .collect(),
        )
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// Debounced change detection over successive fingerprints: a change is
/// reported once the files differ from the settled state and then stay
/// the same for one more poll. A writer that rewrites a file in place is
/// so not caught half-way (a truncated manifest can still be valid YAML
/// holding fewer policies).
#[derive(Debug)]
pub struct ChangeDetector {
    settled: Fingerprint,
    pending: Option<Fingerprint>,
}

impl ChangeDetector {
    /// Starts from `settled`: the state the files were read in.
    pub fn new(settled: Fingerprint) -> Self {
        Self { settled, pending: None }
    }

    /// Feeds the fingerprint of one poll; `true` when the files changed and
    /// have now settled, which makes `now` the new settled state.
    pub fn poll(&mut self, now: Fingerprint) -> bool {
        if now == self.settled {
            self.pending = None;
            return false;
        }
        if self.pending.as_ref() == Some(&now) {
            self.settled = now;
            self.pending = None;
            return true;
        }
        self.pending = Some(now);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(len: u64) -> Fingerprint {
        Fingerprint(vec![Some((SystemTime::UNIX_EPOCH, len, 1))])
    }

    #[test]
    fn a_change_is_reported_once_it_has_settled() {
        let mut detector = ChangeDetector::new(fp(1));
        assert!(!detector.poll(fp(1)), "unchanged");
        assert!(!detector.poll(fp(2)), "changed, not yet settled");
        assert!(!detector.poll(fp(3)), "still being written");
        assert!(detector.poll(fp(3)), "settled");
        assert!(!detector.poll(fp(3)), "reported once");
    }

    #[test]
    fn a_change_that_is_undone_is_not_reported() {
        let mut detector = ChangeDetector::new(fp(1));
        assert!(!detector.poll(fp(2)));
        assert!(!detector.poll(fp(1)));
        assert!(!detector.poll(fp(1)));
    }

    #[test]
    fn fingerprints_see_writes_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        let paths = [path.clone()];
        assert_eq!(Fingerprint::of(&paths), Fingerprint(vec![None]));
        std::fs::write(&path, "a").unwrap();
        let first = Fingerprint::of(&paths);
        std::fs::write(&path, "ab").unwrap();
        assert_ne!(Fingerprint::of(&paths), first);
    }
}
