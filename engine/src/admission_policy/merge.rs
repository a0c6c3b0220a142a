//! The merge of a MutatingAdmissionPolicy's `ApplyConfiguration` into the
//! object admitted, as the API server does it (`mutating/patch/smd.go` of
//! k8s.io/apiserver, with structured-merge-diff's `Merge`):
//!
//! - The configuration may hold no atomic list, map or struct at all
//!   (`command`, `args`, `tolerations`, `capabilities.add`...): it is
//!   refused naming every such path, as the API server refuses it.
//! - Objects and maps merge field by field; a scalar of the configuration
//!   replaces the object's.
//! - A keyed list (`x-kubernetes-list-type: map`: containers and
//!   ephemeralContainers by name, env by name, ports by containerPort and
//!   protocol) merges item by key, in structured-merge-diff's order: the
//!   object's items, with the configuration's new ones placed after the
//!   shared item they follow. A set list is unioned the same way.
//!
//! What a field is comes from [`super::merge_schema`], generated from the
//! OpenAPI documents by `scripts/gen-merge-schema.py`. A kind it does not
//! describe merges objects and maps field by field and treats lists as
//! atomic: the schema-less default of server-side apply.

use serde_json::{Map, Value as Json};

use super::merge_schema::{KINDS, TYPES};

/// How a field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A struct of the named type: field by field.
    Object(&'static str),
    /// A struct or map replaced whole (`x-kubernetes-map-type: atomic`).
    AtomicObject,
    /// A list replaced whole.
    AtomicList,
    /// A list of scalars, unioned.
    SetList,
    /// A list of objects keyed by these fields, of the named item type.
    KeyedList(&'static [&'static str], Option<&'static str>),
    /// A map of string keys, whose values are of the named type (or scalars).
    Map(Option<&'static str>),
}

/// Why an apply configuration was refused: the API server's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// It sets atomic fields.
    #[error("invalid ApplyConfiguration: may not mutate atomic arrays, maps or structs: {}", .0.join(", "))]
    Atomic(Vec<String>),
    /// It is not of the object's kind.
    #[error("patch ({0}) and original object ({1}) are not of the same gvk")]
    Kind(String, String),
    /// An item of a keyed list without its key, or twice the same key.
    #[error("failed to merge patch: {0}")]
    Items(String),
}

/// `configuration` merged into `object`.
pub fn apply_configuration(object: &Json, configuration: &Json) -> Result<Json, MergeError> {
    let gvk = |o: &Json| {
        format!("{}, Kind={}", o["apiVersion"].as_str().unwrap_or_default(), o["kind"].as_str().unwrap_or_default())
    };
    let (api_version, kind) =
        (object["apiVersion"].as_str().unwrap_or("v1"), object["kind"].as_str().unwrap_or_default());
    let same_kind = |field: &str, own: &str| configuration.get(field).and_then(Json::as_str).is_none_or(|v| v == own);
    if !same_kind("apiVersion", api_version) || !same_kind("kind", kind) {
        return Err(MergeError::Kind(gvk(configuration), gvk(object)));
    }
    let root = KINDS.iter().find(|(v, k, _)| *v == api_version && *k == kind).map(|(_, _, t)| *t);
    let shape = root.map(Shape::Object);
    let mut atomics = Vec::new();
    if let Some(shape) = shape {
        find_atomics(shape, configuration, &mut String::new(), &mut atomics);
    }
    if !atomics.is_empty() {
        return Err(MergeError::Atomic(atomics));
    }
    merge(shape, object, configuration).map_err(MergeError::Items)
}

/// The fields of a type.
fn fields(type_name: &str) -> &'static [(&'static str, Shape)] {
    TYPES.iter().find(|(name, _)| *name == type_name).map_or(&[], |(_, fields)| *fields)
}

/// The shape of `field` inside a value of `shape`; `None`: a scalar, or
/// unknown to the schema.
fn field_shape(shape: Shape, field: &str) -> Option<Shape> {
    match shape {
        Shape::Object(type_name) => fields(type_name).iter().find(|(name, _)| *name == field).map(|(_, s)| *s),
        Shape::Map(Some(values)) => Some(Shape::Object(values)),
        _ => None,
    }
}

/// The shape of the items of a list.
fn item_shape(shape: Shape) -> Option<Shape> {
    match shape {
        Shape::KeyedList(_, Some(item)) => Some(Shape::Object(item)),
        _ => None,
    }
}

/// Records the path of every atomic list or struct the configuration sets.
fn find_atomics(shape: Shape, value: &Json, path: &mut String, found: &mut Vec<String>) {
    let atomic = matches!(shape, Shape::AtomicObject | Shape::AtomicList);
    match value {
        Json::Object(map) => {
            if atomic {
                found.push(path.clone());
            }
            for (key, child) in map {
                let Some(child_shape) = field_shape(shape, key) else { continue };
                let len = path.len();
                path.push('.');
                path.push_str(key);
                find_atomics(child_shape, child, path, found);
                path.truncate(len);
            }
        }
        Json::Array(items) => {
            if atomic {
                found.push(path.clone());
            }
            let Some(item) = item_shape(shape) else { return };
            for (index, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                find_atomics(item, child, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// `rhs` merged into `lhs`, by `shape` (`None`: outside the schema).
fn merge(shape: Option<Shape>, lhs: &Json, rhs: &Json) -> Result<Json, String> {
    match (lhs, rhs) {
        (Json::Object(left), Json::Object(right)) if shape != Some(Shape::AtomicObject) => {
            let mut out: Map<String, Json> = left.clone();
            for (key, value) in right {
                // A field the schema does not list is a scalar: replaced.
                let child = shape.map(|s| field_shape(s, key).unwrap_or(Shape::AtomicObject));
                let merged = match left.get(key) {
                    Some(existing) => merge(child, existing, value)?,
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Ok(Json::Object(out))
        }
        (Json::Array(left), Json::Array(right)) => match shape {
            Some(Shape::KeyedList(keys, _)) => merge_items(left, right, |item| key_of(item, keys), shape),
            Some(Shape::SetList) => merge_items(left, right, |item| Ok(item.to_string()), shape),
            _ => Ok(rhs.clone()),
        },
        _ => Ok(rhs.clone()),
    }
}

/// The key of an item of a keyed list, as text. A `protocol` key left out
/// is TCP, its default.
fn key_of(item: &Json, keys: &[&str]) -> Result<String, String> {
    let mut parts = Vec::new();
    for key in keys {
        match item.get(*key) {
            Some(value) => parts.push(format!("{key}={value}")),
            None if *key == "protocol" => parts.push(format!("{key}=\"TCP\"")),
            None => return Err(format!("associative list with keys has an element that omits key field {key:?}")),
        }
    }
    Ok(parts.join(","))
}

/// Two keyed (or set) lists merged as structured-merge-diff merges them:
/// the object's items in order, each shared item merged, and each new item
/// of the configuration placed right after the shared item before it.
fn merge_items(
    left: &[Json],
    right: &[Json],
    key: impl Fn(&Json) -> Result<String, String>,
    shape: Option<Shape>,
) -> Result<Json, String> {
    let item = shape.and_then(item_shape);
    let left_keys = left.iter().map(&key).collect::<Result<Vec<_>, _>>()?;
    let right_keys = right.iter().map(&key).collect::<Result<Vec<_>, _>>()?;
    for (index, k) in right_keys.iter().enumerate() {
        if right_keys[..index].contains(k) {
            return Err(format!("duplicate entries for key [{k}]"));
        }
    }
    let shared: Vec<&String> = right_keys.iter().filter(|k| left_keys.contains(k)).collect();
    let mut next_shared = shared.iter();
    let mut wanted = next_shared.next();
    let mut merged: Vec<&String> = Vec::new();
    let mut out = Vec::new();
    let (mut l, mut r) = (0, 0);
    while l < left.len() || r < right.len() {
        if l < left.len() && r < right.len() {
            if left_keys[l] == right_keys[r] {
                merged.push(&left_keys[l]);
                out.push(merge(item, &left[l], &right[r])?);
                l += 1;
                r += 1;
                wanted = next_shared.next();
                continue;
            }
            if right_keys.contains(&left_keys[l]) && wanted.is_some_and(|w| **w != left_keys[l]) {
                l += 1;
                continue;
            }
        }
        if l < left.len() {
            if !right_keys.contains(&left_keys[l]) {
                out.push(left[l].clone());
                l += 1;
                continue;
            } else if merged.contains(&&left_keys[l]) {
                l += 1;
            }
        }
        if r < right.len() {
            let k = &right_keys[r];
            merged.push(k);
            match left_keys.iter().position(|lk| lk == k) {
                Some(at) => out.push(merge(item, &left[at], &right[r])?),
                None => out.push(right[r].clone()),
            }
            r += 1;
            if wanted.is_some_and(|w| *w == k) {
                wanted = next_shared.next();
            }
        }
    }
    Ok(Json::Array(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(spec: Json) -> Json {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": spec})
    }

    #[test]
    fn keyed_lists_merge_by_key_and_new_items_follow() {
        let object = pod(json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
                                "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}));
        let configuration = json!({"spec": {
            "containers": [{"name": "b", "image": "z", "env": [{"name": "E", "value": "1"}]}, {"name": "c", "image": "w"}],
            "ephemeralContainers": [{"name": "dbg", "securityContext": {"allowPrivilegeEscalation": false}}]
        }});
        let merged = apply_configuration(&object, &configuration).unwrap();
        assert_eq!(
            merged["spec"]["containers"],
            json!([
                {"name": "a", "image": "x"},
                {"name": "b", "image": "z", "env": [{"name": "E", "value": "1"}]},
                {"name": "c", "image": "w"}
            ])
        );
        assert_eq!(
            merged["spec"]["ephemeralContainers"],
            json!([{"name": "dbg", "image": "busybox", "securityContext": {"allowPrivilegeEscalation": false}}])
        );
        assert_eq!(merged["metadata"]["labels"], json!({"app": "web"}));
    }

    #[test]
    fn atomic_fields_are_refused_with_their_paths() {
        let object = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        let configuration = json!({"spec": {
            "initContainers": [{"name": "mesh", "image": "m", "args": ["proxy"]}],
            "tolerations": [{"key": "k"}]
        }});
        let err = apply_configuration(&object, &configuration).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid ApplyConfiguration: may not mutate atomic arrays, maps or structs: .spec.initContainers[0].args, .spec.tolerations"
        );
    }

    #[test]
    fn labels_merge_ports_default_their_protocol_and_keys_are_needed() {
        let object = pod(json!({"containers": [{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}));
        let configuration = json!({"metadata": {"labels": {"team": "shop"}},
                                   "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]}});
        let merged = apply_configuration(&object, &configuration).unwrap();
        assert_eq!(merged["metadata"]["labels"], json!({"app": "web", "team": "shop"}));
        assert_eq!(
            merged["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}])
        );
        let keyless = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(apply_configuration(&object, &keyless).unwrap_err().to_string().contains("omits key field \"name\""));
        let other_kind = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert!(matches!(apply_configuration(&object, &other_kind), Err(MergeError::Kind(..))));
    }
}
