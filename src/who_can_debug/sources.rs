//! Where the RBAC objects come from: files (a `kubectl get
//! clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml` dump, or
//! manifests, or directories of them), or the cluster of the current
//! kubeconfig, read-only (list on the four kinds, nothing else).

use std::path::{Path, PathBuf};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::rbac::Rbac;

/// The dump command whose output `--from` reads.
pub const DUMP: &str = "kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml";

/// Why the RBAC objects could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is neither JSON nor YAML.
    #[error("{} is neither JSON nor YAML ({message}): pass what `{DUMP}` prints, or RBAC manifests", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with its location.
        message: String,
    },
    /// An RBAC object does not have the shape of its kind.
    #[error(
        "{}: {at} ({kind} {name}) is not a valid {kind}: {message}: fix the object, or leave the file out of --from",
        path.display()
    )]
    Object {
        /// The file.
        path: PathBuf,
        /// Where in the file: `document 2`, `item 14`, `document 0, item 3`.
        at: String,
        /// Its kind.
        kind: String,
        /// Its name, quoted, or `without a name`.
        name: String,
        /// What is wrong, with the field path.
        message: String,
    },
    /// The files hold no RBAC object at all.
    #[error("no Role, ClusterRole, RoleBinding or ClusterRoleBinding in {files}: pass what `{DUMP}` prints")]
    Empty {
        /// The files read.
        files: String,
    },
    /// No API server could be reached.
    #[error("cannot reach the Kubernetes API server ({message}): set KUBECONFIG, or read a dump with --from FILE")]
    Connect {
        /// The client's message.
        message: String,
    },
    /// A list was refused (or failed).
    #[error(
        "cannot list {failed}: {messages}. who-can-debug needs only list on roles, clusterroles, rolebindings and \
         clusterrolebindings (rbac.authorization.k8s.io, all namespaces): ask for a ClusterRole granting that, or \
         read a dump with --from FILE (`{DUMP}`)"
    )]
    List {
        /// The lists that failed: `clusterroles, rolebindings`.
        failed: String,
        /// The API server's messages.
        messages: String,
    },
}

/// Reads every file given, and every `.yaml`, `.yml` and `.json` file
/// under each directory given.
pub fn read_files(paths: &[PathBuf]) -> Result<Rbac, SourceError> {
    let mut rbac = Rbac::default();
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                let entry = entry.map_err(|e| SourceError::Read {
                    path: e.path().unwrap_or(path).to_path_buf(),
                    source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("a symbolic link loop")),
                })?;
                let name = entry.file_name().to_string_lossy();
                if entry.file_type().is_file()
                    && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
                {
                    files.push(entry.into_path());
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|source| SourceError::Read { path: file.clone(), source })?;
        rbac.extend(parse(file, &text)?);
    }
    if rbac.is_empty() {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        return Err(SourceError::Empty { files: if names.is_empty() { "no file".into() } else { names.join(", ") } });
    }
    Ok(rbac)
}

/// The RBAC objects of one file's text: JSON, or YAML documents; each a
/// List (`kubectl get -o yaml`), a typed list (`ClusterRoleList`), or an
/// object. Other kinds are passed over; a document without a kind is too,
/// unless it has `rules` or `roleRef`.
pub fn parse(path: &Path, text: &str) -> Result<Rbac, SourceError> {
    let syntax = |message: String| SourceError::Syntax { path: path.to_path_buf(), message };
    // JSON as JSON: a large cluster's dump can exceed the YAML reader's node budget.
    let documents: Vec<Value> = if text.trim_start().starts_with('{') {
        vec![serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?]
    } else {
        egate_engine::yaml::documents(text).map_err(|(index, e)| syntax(format!("document {index}: {e}")))?
    };
    let single = documents.len() == 1;
    let mut rbac = Rbac::default();
    for (index, document) in documents.into_iter().enumerate() {
        let at = if single { String::new() } else { format!("document {index}") };
        add(&mut rbac, path, &at, document, None)?;
    }
    Ok(rbac)
}

fn add(rbac: &mut Rbac, path: &Path, at: &str, object: Value, kind_of_items: Option<&str>) -> Result<(), SourceError> {
    let kind = object.get("kind").and_then(Value::as_str).or(kind_of_items).unwrap_or_default().to_string();
    if let Some(items) = object.get("items").and_then(Value::as_array).filter(|_| kind.ends_with("List")) {
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        for (index, item) in items.iter().enumerate() {
            let at = if at.is_empty() { format!("item {index}") } else { format!("{at}, item {index}") };
            add(rbac, path, &at, item.clone(), item_kind)?;
        }
        return Ok(());
    }
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let rbac_group = api_version.is_none_or(|v| v.starts_with("rbac.authorization.k8s.io/"));
    let at = if at.is_empty() { "the document".to_string() } else { at.to_string() };
    let looks_like_rbac = object.get("rules").is_some() || object.get("roleRef").is_some();
    match kind.as_str() {
        "Role" if rbac_group => rbac.roles.push(typed(path, &at, &kind, object)?),
        "ClusterRole" if rbac_group => rbac.cluster_roles.push(typed(path, &at, &kind, object)?),
        "RoleBinding" if rbac_group => rbac.role_bindings.push(typed(path, &at, &kind, object)?),
        "ClusterRoleBinding" if rbac_group => rbac.cluster_role_bindings.push(typed(path, &at, &kind, object)?),
        "" if looks_like_rbac => {
            return Err(SourceError::Object {
                path: path.to_path_buf(),
                at,
                kind: "object".into(),
                name: name(&object),
                message: "it has rules or a roleRef but no kind".into(),
            });
        }
        _ => {}
    }
    Ok(())
}

fn name(object: &Value) -> String {
    match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{name:?}"),
        None => "without a name".into(),
    }
}

/// The object as its k8s-openapi type; the error names the field.
fn typed<T: DeserializeOwned>(path: &Path, at: &str, kind: &str, object: Value) -> Result<T, SourceError> {
    let name = name(&object);
    if name == "without a name" {
        return Err(SourceError::Object {
            path: path.to_path_buf(),
            at: at.to_string(),
            kind: kind.to_string(),
            name,
            message: "it has no metadata.name".into(),
        });
    }
    serde_path_to_error::deserialize(object).map_err(|error| {
        let field = error.path().to_string();
        let message = if field == "." { error.inner().to_string() } else { format!("{field}: {}", error.inner()) };
        SourceError::Object { path: path.to_path_buf(), at: at.to_string(), kind: kind.to_string(), name, message }
    })
}

/// Every Role, ClusterRole, RoleBinding and ClusterRoleBinding of the
/// cluster of the current kubeconfig (`KUBECONFIG`), with four lists.
pub fn read_cluster() -> Result<Rbac, SourceError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Connect { message: format!("cannot start the client's runtime: {e}") })?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(|e| SourceError::Connect { message: e.to_string() })?;
        let (roles, cluster_roles, role_bindings, cluster_role_bindings) = tokio::join!(
            list::<Role>(&client),
            list::<ClusterRole>(&client),
            list::<RoleBinding>(&client),
            list::<ClusterRoleBinding>(&client)
        );
        let failures: Vec<(&str, String)> = [
            ("roles", roles.as_ref().err()),
            ("clusterroles", cluster_roles.as_ref().err()),
            ("rolebindings", role_bindings.as_ref().err()),
            ("clusterrolebindings", cluster_role_bindings.as_ref().err()),
        ]
        .into_iter()
        .filter_map(|(what, error)| error.map(|e| (what, e.clone())))
        .collect();
        match (roles, cluster_roles, role_bindings, cluster_role_bindings) {
            (Ok(roles), Ok(cluster_roles), Ok(role_bindings), Ok(cluster_role_bindings)) => {
                Ok(Rbac { roles, cluster_roles, role_bindings, cluster_role_bindings })
            }
            _ => Err(SourceError::List {
                failed: failures.iter().map(|(what, _)| *what).collect::<Vec<_>>().join(", "),
                messages: failures.iter().map(|(_, message)| message.as_str()).collect::<Vec<_>>().join("; "),
            }),
        }
    })
}

async fn list<K>(client: &kube::Client) -> Result<Vec<K>, String>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let api: kube::Api<K> = kube::Api::all(client.clone());
    match api.list(&Default::default()).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(status)) => Err(status.message.clone()),
        Err(other) => Err(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Rbac, SourceError> {
        parse(Path::new("rbac.yaml"), text)
    }

    #[test]
    fn reads_a_kubectl_dump_a_typed_list_and_manifests() {
        let dump = "apiVersion: v1\nkind: List\nitems:\n\
            - apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRole\n  metadata: {name: a}\n  rules: []\n\
            - apiVersion: rbac.authorization.k8s.io/v1\n  kind: RoleBinding\n  metadata: {name: b, namespace: shop}\n  \
              roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: a}\n";
        let rbac = parse_text(dump).unwrap();
        assert_eq!((rbac.cluster_roles.len(), rbac.role_bindings.len()), (1, 1));
        let typed = r#"{"kind": "RoleList", "apiVersion": "rbac.authorization.k8s.io/v1",
                        "items": [{"metadata": {"name": "r", "namespace": "dev"}, "rules": []}]}"#;
        assert_eq!(parse_text(typed).unwrap().roles.len(), 1);
        let manifests = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n\
            apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: c}\n\
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: a}\nsubjects: [{kind: Group, name: sre}]\n";
        let rbac = parse_text(manifests).unwrap();
        assert_eq!(rbac.cluster_role_bindings.len(), 1, "the Deployment is passed over");
    }

    #[test]
    fn a_malformed_object_is_named_by_file_position_kind_and_name() {
        let dump = "apiVersion: v1\nkind: List\nitems:\n\
            - apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRole\n  metadata: {name: fine}\n\
            - apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRole\n  metadata: {name: broken}\n  \
              rules: [{apiGroups: [''], resources: pods, verbs: [get]}]\n";
        let error = parse_text(dump).unwrap_err().to_string();
        assert!(
            error.starts_with("rbac.yaml: item 1 (ClusterRole \"broken\") is not a valid ClusterRole: rules[0]"),
            "{error}"
        );
        assert!(error.contains("resources"), "{error}");
        assert!(error.contains("fix the object"), "{error}");
        let no_kind = "metadata: {name: x}\nroleRef: {kind: ClusterRole, name: a}\n";
        let error = parse_text(no_kind).unwrap_err().to_string();
        assert!(error.contains("the document (object \"x\")") && error.contains("no kind"), "{error}");
        let second = "kind: Namespace\n---\nkind: RoleBinding\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: {name: rb}\nroleRef: 7\n";
        let error = parse_text(second).unwrap_err().to_string();
        assert!(error.contains("document 1 (RoleBinding \"rb\")") && error.contains("roleRef"), "{error}");
    }

    #[test]
    fn text_that_is_not_yaml_and_files_without_rbac_are_refused() {
        assert!(matches!(parse_text("{not json"), Err(SourceError::Syntax { .. })));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("values.yaml"), "replicas: 2\n").unwrap();
        let error = read_files(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert!(error.contains("values.yaml") && error.contains("kubectl get clusterroles"), "{error}");
    }
}
