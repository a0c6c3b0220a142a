//! Credentials from a docker-style `config.json` (`docker login` writes it).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::OciError;

/// The `auths` of a docker `config.json`.
#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    /// base64 of `user:password`.
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Credentials per registry, read once.
#[derive(Debug, Default)]
pub struct Credentials {
    /// Where they were read from (or would have been), for messages.
    pub source: String,
    entries: Vec<(String, String, String)>,
}

impl Credentials {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => Some(Path::new(&dir).join("config.json")),
            None => std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker/config.json")),
        }
    }

    /// Reads `path`; a missing file at the default place means no credentials.
    pub fn read(path: Option<&Path>) -> Result<Self, OciError> {
        let explicit = path.is_some();
        let Some(path) = path.map(Path::to_path_buf).or_else(Self::default_path) else {
            return Ok(Self {
                source: "no docker config.json (set DOCKER_CONFIG or --registry-config)".into(),
                ..Self::default()
            });
        };
        let source = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Self { source: format!("{source} (absent)"), ..Self::default() });
            }
            Err(e) => return Err(OciError::File { path, message: format!("cannot read registry credentials: {e}") }),
        };
        let file_error = |message: String| OciError::File { path: path.clone(), message };
        let config: DockerConfig = serde_json::from_str(&text)
            .map_err(|e| file_error(format!("not a docker config.json: {e}: write {{\"auths\": {{\"HOST:PORT\": {{\"auth\": \"BASE64(user:password)\"}}}}}}")))?;
        let mut entries = Vec::new();
        for (host, entry) in config.auths {
            let (user, password) = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) => base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|pair| pair.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
                    .ok_or_else(|| file_error(format!("auths.{host:?}.auth is not base64 of user:password")))?,
                (None, Some(user), Some(password)) => (user, password),
                _ => continue, // identity tokens and helpers: not read (docs/security.md)
            };
            entries.push((registry_of(&host).to_string(), user, password));
        }
        Ok(Self { source, entries })
    }

    /// The credentials for `registry` (`HOST[:PORT]`), else anonymous.
    /// A registry that wants a bearer token gets them in its token request
    /// (oci-client's challenge handling); one that wants basic auth, on
    /// every request.
    pub fn for_registry(&self, registry: &str) -> RegistryAuth {
        match self.entries.iter().find(|(host, _, _)| host == registry) {
            Some((_, user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// The user egate presents to `registry`, if any, for messages.
    pub fn user_for(&self, registry: &str) -> Option<&str> {
        self.entries.iter().find(|(host, _, _)| host == registry).map(|(_, user, _)| user.as_str())
    }
}

/// `HOST[:PORT]` of an `auths` key, which may be a URL (`https://host/v1/`).
fn registry_of(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entries_become_basic_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(&path, format!(r#"{{"auths": {{"https://127.0.0.1:5000/v2/": {{"auth": "{auth}"}}}}}}"#))
            .unwrap();
        let credentials = Credentials::read(Some(&path)).unwrap();
        assert!(
            matches!(credentials.for_registry("127.0.0.1:5000"), RegistryAuth::Basic(u, p) if u == "alice" && p == "s3cret")
        );
        assert!(matches!(credentials.for_registry("other:5000"), RegistryAuth::Anonymous));
        assert!(Credentials::read(Some(&dir.path().join("absent.json"))).is_err(), "a named file must exist");
    }
}
