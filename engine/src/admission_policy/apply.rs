//! The merge of a MutatingAdmissionPolicy's `ApplyConfiguration` mutation
//! into the object admitted, as the API server does it: k8s.io/apiserver's
//! `mutating/patch/smd.go` (`ApplyStructuredMergeDiff`), which checks the
//! configuration against the type's schema, refuses atomic fields in it, and
//! merges it with structured-merge-diff's `Merge` (`typed/merge.go`).
//!
//! - The configuration takes the object's `apiVersion` and `kind`, and must
//!   conform to the schema: a field the type does not declare, a value of the
//!   wrong kind, or two items of a keyed list with one key are refused.
//! - It may hold no atomic list, map or struct (`command`, `args`,
//!   `tolerations`, `capabilities.add`, `nodeSelector`, `selector`...): they
//!   are refused, every path named, as the API server refuses them; so are
//!   the items of `ownerReferences`, atomic structs in a keyed list. A `null`
//!   is not one: `tolerations: null` clears the list.
//! - Structs and maps (`labels`, `annotations`) merge field by field; a scalar
//!   of the configuration replaces the object's, `metadata.name` and
//!   `namespace` included (the merge does not guard them).
//! - A keyed list (`x-kubernetes-list-type: map`: containers, initContainers
//!   and ephemeralContainers by name, env by name, ports by containerPort and
//!   protocol, volumeMounts by mountPath, volumes by name) merges item by key.
//!   A key field an item leaves out takes its schema default (`name: ""`,
//!   `protocol: TCP`); an item with no key field and no default is refused.
//!   A set list (`finalizers`) is unioned. The order is structured-merge-diff's:
//!   the items the configuration names come in its order, each new one where
//!   it stands among the ones the object has, and the object's other items
//!   keep their places between them (object `[a, b, c]` and configuration
//!   `[x, c, y, a]` give `[b, x, c, y, a]`); new items alone are appended.
//!   Items the object has twice under one key become the configuration's
//!   one item.
//! - A `null` in the configuration replaces a scalar, an atomic value or an
//!   empty one, and leaves a struct, map or list that has content alone.
//!
//! What a field is comes from the table of `apply_schema.rs`, generated from the Kubernetes
//! OpenAPI documents by `scripts/gen-apply-schema.py`, for the kinds of
//! core/v1, apps/v1 and batch/v1. A kind it does not hold merges as
//! structured-merge-diff merges a free-form value: objects field by field,
//! lists replaced whole (the API server would use the type's own schema).
//! Fields of the object that its schema does not declare are kept as they
//! are (the API server never admits such an object). Numbers are compared by
//! value in keys but copied as written (`80.0` stays `80.0`, where Go writes `80`).

use serde_json::{Map, Value as Json};

#[path = "apply_schema.rs"]
mod schema;

/// Merges `configuration` (an apply configuration, JSON) into `object` as Kubernetes'
/// server-side apply merges a MutatingAdmissionPolicy's ApplyConfiguration: the
/// object of kind `kind` of `api_version` merged with the configuration, or why the
/// API server would refuse the configuration.
pub fn apply_configuration(
    api_version: &str,
    kind: &str,
    object: &Json,
    configuration: &Json,
) -> Result<Json, ApplyError> {
    let Json::Object(fields) = configuration else {
        return Err(ApplyError::NotAnObject { found: kind_of(configuration) });
    };
    // smd.go's Patch gives the configuration the object's kind.
    let mut fields = fields.clone();
    fields.insert("apiVersion".into(), api_version.into());
    fields.insert("kind".into(), kind.into());
    let configuration = Json::Object(fields);
    let root = root_shape(api_version, kind);
    validate(root, &configuration, "")?;
    let mut atomics = Vec::new();
    find_atomics(root, &configuration, "", &mut atomics);
    if !atomics.is_empty() {
        return Err(ApplyError::Atomic { paths: atomics });
    }
    Ok(merge(root, Some(object), Some(&configuration))?.unwrap_or(Json::Null))
}

/// Why an apply configuration was refused. Paths are the configuration's
/// (`.spec.containers[0].image`), as the API server writes them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The configuration is not an object.
    #[error("an ApplyConfiguration is an object (`Object{{...}}`), not {found}")]
    NotAnObject {
        /// What it is.
        found: String,
    },
    /// A field its type does not declare.
    #[error("{path}: field not declared in the schema of {type_name}: remove it or correct its name")]
    UnknownField {
        /// Where.
        path: String,
        /// The type that has no such field.
        type_name: String,
    },
    /// A value of the wrong kind.
    #[error("{path}: expected {expected}, got {found}: write {expected} there")]
    WrongType {
        /// Where.
        path: String,
        /// What the schema wants there.
        expected: &'static str,
        /// What the configuration has there.
        found: String,
    },
    /// An item of a keyed list with none of its key fields, which have no default.
    #[error(
        "{path}: an item of this keyed list sets none of its key fields {keys}: set {keys} to say which item it is"
    )]
    MissingKey {
        /// The item.
        path: String,
        /// The key fields, comma-separated.
        keys: String,
    },
    /// Two items of a keyed or set list with one key.
    #[error("{path}: a second item with the key {key}: write each item once, its fields together")]
    DuplicateKey {
        /// The second item.
        path: String,
        /// Their key (`name="app"`).
        key: String,
    },
    /// An item a keyed or set list cannot hold (null, or of the wrong kind).
    #[error("{path}: {reason}")]
    BadItem {
        /// The item.
        path: String,
        /// What is wrong and what to write.
        reason: String,
    },
    /// Atomic lists, maps or structs, which an ApplyConfiguration may not set.
    // The API server's words, as they reach the user (the docs say to use
    // a JSONPatch mutation for such fields).
    #[error("invalid ApplyConfiguration: may not mutate atomic arrays, maps or structs: {}", .paths.join(", "))]
    Atomic {
        /// Every atomic value the configuration sets.
        paths: Vec<String>,
    },
    /// The object admitted has a keyed or set list the API server would not
    /// have admitted.
    #[error("the object admitted does not fit its schema, in a list: item {reason}")]
    InvalidObject {
        /// The item at fault and why.
        reason: String,
    },
}

/// A struct type of the table: its name, its scalar fields (`name:kind`
/// words), its other fields.
type TypeEntry = (&'static str, &'static str, &'static [(&'static str, Shape)]);

/// How a field merges: what structured-merge-diff makes of its schema.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A string.
    Str,
    /// A number.
    Num,
    /// A boolean.
    Bool,
    /// Any scalar (a time, `int-or-string` as a format).
    Any,
    /// A struct of the named type of [`schema::TYPES`], merged field by field.
    Struct(&'static str),
    /// A struct of the named type, replaced whole (`x-kubernetes-map-type: atomic`).
    AtomicStruct(&'static str),
    /// A map of string keys to values of the shape, merged key by key.
    Map(&'static Shape),
    /// A map replaced whole.
    AtomicMap(&'static Shape),
    /// A list replaced whole.
    AtomicList(&'static Shape),
    /// A list of scalars, unioned (`x-kubernetes-list-type: set`).
    SetList(&'static Shape),
    /// A list of structs merged by these key fields, each with its default
    /// as JSON text.
    KeyedList(&'static [(&'static str, Option<&'static str>)], &'static Shape),
    /// A free-form value (`Quantity`, `IntOrString`, `RawExtension`): a map
    /// merges key by key, a list is replaced whole.
    Deduced,
    /// What a free-form list holds: any value, replaced whole.
    Untyped,
}

/// Which of its forms a value takes: structured-merge-diff's atoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Scalar,
    Map,
    List,
}

/// How a list merges.
#[derive(Debug, Clone, Copy)]
enum ListType {
    Atomic,
    Set,
    Keyed(&'static [(&'static str, Option<&'static str>)]),
}

/// The shape of the kind's root type, or a free-form value for a kind the
/// table does not hold.
fn root_shape(api_version: &str, kind: &str) -> Shape {
    schema::KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map_or(Shape::Deduced, |(_, _, root)| Shape::Struct(root))
}

/// A struct type's scalar fields (`name:kind` words) and its other fields.
fn type_of(name: &str) -> (&'static str, &'static [(&'static str, Shape)]) {
    match schema::TYPES.binary_search_by(|(n, _, _)| (*n).cmp(name)) {
        Ok(i) => (schema::TYPES[i].1, schema::TYPES[i].2),
        // Not reached: the generator lists every type a field refers to.
        Err(_) => ("", &[]),
    }
}

/// The shape of a struct type's field, if it declares it.
fn field_of(type_name: &str, field: &str) -> Option<Shape> {
    let (scalars, fields) = type_of(type_name);
    if let Some((_, shape)) = fields.iter().find(|(name, _)| *name == field) {
        return Some(*shape);
    }
    let kind = scalars.split(' ').find_map(|word| word.strip_prefix(field)?.strip_prefix(':'))?;
    Some(match kind {
        "s" => Shape::Str,
        "n" => Shape::Num,
        "b" => Shape::Bool,
        _ => Shape::Any,
    })
}

/// The atom of `shape` that handles `value`: the value's own form where the
/// shape allows several (`deduceAtom`), else the map (`handleAtom`'s order).
fn atom_of(shape: Shape, value: &Json) -> Atom {
    match shape {
        Shape::Str | Shape::Num | Shape::Bool | Shape::Any => Atom::Scalar,
        Shape::Struct(_) | Shape::AtomicStruct(_) | Shape::Map(_) | Shape::AtomicMap(_) => Atom::Map,
        Shape::AtomicList(_) | Shape::SetList(_) | Shape::KeyedList(..) => Atom::List,
        Shape::Deduced | Shape::Untyped => match value {
            Json::Array(_) => Atom::List,
            Json::Object(_) | Json::Null => Atom::Map,
            _ => Atom::Scalar,
        },
    }
}

/// Whether a map of this shape is replaced whole.
fn map_is_atomic(shape: Shape) -> bool {
    matches!(shape, Shape::AtomicStruct(_) | Shape::AtomicMap(_) | Shape::Untyped)
}

/// The shape of a map's entry or a struct's field `key`, if declared.
fn entry_of(shape: Shape, key: &str) -> Option<Shape> {
    match shape {
        Shape::Struct(name) | Shape::AtomicStruct(name) => field_of(name, key),
        Shape::Map(value) | Shape::AtomicMap(value) => Some(*value),
        Shape::Untyped => Some(Shape::Untyped),
        _ => Some(Shape::Deduced),
    }
}

/// How a list of this shape merges, and the shape of its items.
fn list_of(shape: Shape) -> (ListType, Shape) {
    match shape {
        Shape::SetList(item) => (ListType::Set, *item),
        Shape::KeyedList(keys, item) => (ListType::Keyed(keys), *item),
        Shape::AtomicList(item) => (ListType::Atomic, *item),
        _ => (ListType::Atomic, Shape::Untyped),
    }
}

/// A value's kind, for messages.
fn kind_of(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("the boolean {b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) => format!("the string {s:?}"),
        Json::Array(_) => "a list".into(),
        Json::Object(_) => "an object".into(),
    }
}

/// Checks the configuration against its schema, as `ObjectToTyped` does
/// (`typed/validate.go`, duplicates refused). `null` fits any field.
fn validate(shape: Shape, value: &Json, path: &str) -> Result<(), ApplyError> {
    if value.is_null() {
        return Ok(());
    }
    match atom_of(shape, value) {
        Atom::Scalar => validate_scalar(shape, value, path),
        Atom::Map => validate_map(shape, value, path),
        Atom::List => validate_list(shape, value, path),
    }
}

fn validate_scalar(shape: Shape, value: &Json, path: &str) -> Result<(), ApplyError> {
    let (fits, expected) = match shape {
        Shape::Str => (value.is_string(), "a string"),
        Shape::Num => (value.is_number(), "a number"),
        Shape::Bool => (value.is_boolean(), "a boolean"),
        _ => (!value.is_object() && !value.is_array(), "a scalar"),
    };
    if fits { Ok(()) } else { Err(wrong_type(path, expected, value)) }
}

fn validate_map(shape: Shape, value: &Json, path: &str) -> Result<(), ApplyError> {
    let Json::Object(fields) = value else {
        return Err(wrong_type(path, "an object", value));
    };
    for (key, value) in fields {
        let path = format!("{path}.{key}");
        let Some(shape) = entry_of(shape, key) else {
            let type_name = match shape {
                Shape::Struct(name) | Shape::AtomicStruct(name) => name.to_string(),
                _ => String::new(),
            };
            return Err(ApplyError::UnknownField { path, type_name });
        };
        validate(shape, value, &path)?;
    }
    Ok(())
}

fn validate_list(shape: Shape, value: &Json, path: &str) -> Result<(), ApplyError> {
    let Json::Array(items) = value else {
        return Err(wrong_type(path, "a list", value));
    };
    let (list_type, item_shape) = list_of(shape);
    if !matches!(list_type, ListType::Atomic) {
        let ids = ids_of(list_type, items, path)?;
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].iter().any(|seen| same_id(seen, id)) {
                return Err(ApplyError::DuplicateKey { path: format!("{path}[{i}]"), key: show_id(id) });
            }
        }
    }
    for (i, item) in items.iter().enumerate() {
        validate(item_shape, item, &format!("{path}[{i}]"))?;
    }
    Ok(())
}

fn wrong_type(path: &str, expected: &'static str, value: &Json) -> ApplyError {
    ApplyError::WrongType { path: path.to_string(), expected, found: kind_of(value) }
}

/// The paths of the atomic lists, maps and structs the configuration sets,
/// as smd.go's `findAtomics` finds them: it looks into the declared fields of
/// structs and into the items of lists, not into the entries of maps.
fn find_atomics(shape: Shape, value: &Json, path: &str, atomics: &mut Vec<String>) {
    match (atom_of(shape, value), value) {
        (Atom::Map, Json::Object(fields)) => {
            if map_is_atomic(shape) {
                atomics.push(path.to_string());
            }
            let (Shape::Struct(name) | Shape::AtomicStruct(name)) = shape else { return };
            for (key, value) in fields {
                if let Some(field) = field_of(name, key) {
                    find_atomics(field, value, &format!("{path}.{key}"), atomics);
                }
            }
        }
        (Atom::List, Json::Array(items)) => {
            let (list_type, item_shape) = list_of(shape);
            if matches!(list_type, ListType::Atomic) {
                atomics.push(path.to_string());
            }
            for (i, item) in items.iter().enumerate() {
                find_atomics(item_shape, item, &format!("{path}[{i}]"), atomics);
            }
        }
        _ => {}
    }
}

/// `rhs` merged into `lhs` (`typed/merge.go`'s `mergingWalker.merge` with
/// `ruleKeepRHS`); `None` for absent, and for no output.
fn merge(shape: Shape, lhs: Option<&Json>, rhs: Option<&Json>) -> Result<Option<Json>, ApplyError> {
    // A side alone is its own merge: copied whole.
    let Some(rhs) = rhs else { return Ok(lhs.cloned()) };
    let Some(lhs) = lhs else { return Ok(Some(rhs.clone())) };
    match atom_of(shape, rhs) {
        Atom::Scalar => Ok(Some(rhs.clone())),
        Atom::Map => merge_map(shape, lhs.as_object(), rhs),
        Atom::List => merge_list(shape, lhs.as_array(), rhs),
    }
}

/// A struct or map: the configuration's whole if atomic or if both are empty
/// (which keeps `{}` apart from `null`), else key by key. A `lhs` of another
/// form counts as absent, as `derefMap`'s error is dropped.
fn merge_map(shape: Shape, lhs: Option<&Map<String, Json>>, rhs: &Json) -> Result<Option<Json>, ApplyError> {
    let rhs_fields = rhs.as_object();
    let empty = |m: Option<&Map<String, Json>>| m.is_none_or(Map::is_empty);
    if map_is_atomic(shape) || (empty(lhs) && empty(rhs_fields)) {
        return Ok(Some(rhs.clone()));
    }
    let mut out = Map::new();
    for (key, value) in lhs.into_iter().flatten() {
        let entry = entry_of(shape, key).unwrap_or(Shape::Deduced);
        if let Some(merged) = merge(entry, Some(value), rhs_fields.and_then(|r| r.get(key)))? {
            out.insert(key.clone(), merged);
        }
    }
    for (key, value) in rhs_fields.into_iter().flatten() {
        if !lhs.is_some_and(|l| l.contains_key(key)) {
            out.insert(key.clone(), value.clone());
        }
    }
    Ok(if out.is_empty() { None } else { Some(Json::Object(out)) })
}

/// A list: the configuration's whole if atomic or if both are empty, else
/// item by item.
fn merge_list(shape: Shape, lhs: Option<&Vec<Json>>, rhs: &Json) -> Result<Option<Json>, ApplyError> {
    let (list_type, item_shape) = list_of(shape);
    let lhs = lhs.map_or(&[][..], Vec::as_slice);
    let rhs_items = rhs.as_array().map_or(&[][..], Vec::as_slice);
    if matches!(list_type, ListType::Atomic) || (lhs.is_empty() && rhs_items.is_empty()) {
        return Ok(Some(rhs.clone()));
    }
    let out = merge_items(list_type, item_shape, lhs, rhs_items)?;
    Ok(if out.is_empty() { None } else { Some(Json::Array(out)) })
}

/// The items of a keyed or set list merged, in the order of
/// `mergingWalker.visitListItems` (ported step by step): the object's items
/// are walked in order, each one the configuration also has is emitted
/// (merged) where the configuration reaches it, the configuration's other
/// items where it has them.
fn merge_items(list_type: ListType, shape: Shape, lhs: &[Json], rhs: &[Json]) -> Result<Vec<Json>, ApplyError> {
    let rhs_ids = ids_of(list_type, rhs, "")?;
    // The API server refuses such an object before it merges.
    let lhs_ids = ids_of(list_type, lhs, "").map_err(|e| ApplyError::InvalidObject { reason: e.to_string() })?;
    let in_rhs = |id: &Id| rhs_ids.iter().position(|r| same_id(r, id));
    // The configuration's items the object also has, in the configuration's order.
    let mut shared = rhs_ids.iter().filter(|id| lhs_ids.iter().any(|l| same_id(l, id))).peekable();
    let mut merged: Vec<&Id> = Vec::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut l, mut r) = (0, 0);
    while l < lhs.len() || r < rhs.len() {
        if l < lhs.len() && r < rhs.len() {
            if same_id(&lhs_ids[l], &rhs_ids[r]) {
                merged.push(&rhs_ids[r]);
                out.extend(merge(shape, observed(&lhs_ids, lhs, &rhs_ids[r]), Some(&rhs[r]))?);
                (l, r) = (l + 1, r + 1);
                shared.next();
                continue;
            }
            // A shared item, but not the next one the configuration merges:
            // it is emitted when the configuration reaches it.
            if in_rhs(&lhs_ids[l]).is_some() && shared.peek().is_some_and(|next| !same_id(next, &lhs_ids[l])) {
                l += 1;
                continue;
            }
        }
        if l < lhs.len() {
            if in_rhs(&lhs_ids[l]).is_none() {
                out.extend(merge(shape, Some(&lhs[l]), None)?);
                l += 1;
                continue;
            } else if merged.iter().any(|m| same_id(m, &lhs_ids[l])) {
                l += 1;
            }
        }
        if r < rhs.len() {
            let id = &rhs_ids[r];
            merged.push(id);
            out.extend(merge(shape, observed(&lhs_ids, lhs, id), Some(&rhs[r]))?);
            r += 1;
            if shared.peek().is_some_and(|next| same_id(next, id)) {
                shared.next();
            }
        }
    }
    Ok(out)
}

/// The object's item with this id, if it has exactly one: items it has
/// twice merge as absent, so the configuration's item replaces them.
fn observed<'a>(ids: &[Id], items: &'a [Json], id: &Id) -> Option<&'a Json> {
    let mut found = ids.iter().enumerate().filter(|(_, i)| same_id(i, id));
    let (first, _) = found.next()?;
    if found.next().is_some() { None } else { Some(&items[first]) }
}

/// What identifies an item of a keyed or set list (`fieldpath.PathElement`).
#[derive(Debug)]
enum Id {
    /// A keyed item's key fields that it sets or that have a default.
    Key(Vec<(&'static str, Json)>),
    /// A set item: itself.
    Value(Json),
}

/// The ids of a list's items (`listItemToPathElement`).
fn ids_of(list_type: ListType, items: &[Json], path: &str) -> Result<Vec<Id>, ApplyError> {
    let bad = |i: usize, reason: &str| ApplyError::BadItem { path: format!("{path}[{i}]"), reason: reason.into() };
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let id = match (list_type, item) {
            (_, Json::Null) => return Err(bad(i, "an item of a keyed or set list may not be null: remove it")),
            (ListType::Keyed(keys), Json::Object(fields)) => key_of(keys, fields, &format!("{path}[{i}]"))?,
            (ListType::Keyed(_), _) => return Err(bad(i, "an item of a keyed list is an object: write `{...}`")),
            (_, Json::Object(_) | Json::Array(_)) => {
                return Err(bad(i, "an item of a set list is a scalar: write a string or a number"));
            }
            (_, scalar) => Id::Value(scalar.clone()),
        };
        ids.push(id);
    }
    Ok(ids)
}

/// A keyed item's key (`keyedAssociativeListItemToPathElement`): a key field
/// it leaves out takes its default, or is left out of the key.
fn key_of(
    keys: &'static [(&'static str, Option<&'static str>)],
    fields: &Map<String, Json>,
    path: &str,
) -> Result<Id, ApplyError> {
    let mut key = Vec::with_capacity(keys.len());
    for (name, default) in keys {
        if let Some(value) = fields.get(*name) {
            key.push((*name, value.clone()));
        } else if let Some(default) = default {
            // The generator writes defaults as JSON.
            key.push((*name, serde_json::from_str(default).unwrap_or(Json::Null)));
        }
    }
    if key.is_empty() {
        let names = keys.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
        return Err(ApplyError::MissingKey { path: path.to_string(), keys: names });
    }
    // Sorted by field name, as structured-merge-diff sorts a key.
    key.sort_by(|a, b| a.0.cmp(b.0));
    Ok(Id::Key(key))
}

fn same_id(a: &Id, b: &Id) -> bool {
    match (a, b) {
        (Id::Key(a), Id::Key(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((an, av), (bn, bv))| an == bn && same_value(av, bv))
        }
        (Id::Value(a), Id::Value(b)) => same_value(a, b),
        _ => false,
    }
}

/// Equality of scalars as structured-merge-diff compares them: numbers by
/// value, whether written as integers or not (`80` is `80.0`).
fn same_value(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) if !(x.is_f64() || y.is_f64()) => x == y,
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn show_id(id: &Id) -> String {
    match id {
        Id::Key(fields) => fields.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(","),
        Id::Value(value) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod() -> Json {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"team": "a"}},
            "spec": {
                "containers": [{
                    "name": "app", "image": "app:v1",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "securityContext": {"capabilities": {"drop": ["ALL"]}},
                }],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
        })
    }

    fn apply_to_pod(configuration: Json) -> Result<Json, ApplyError> {
        apply_configuration("v1", "Pod", &pod(), &configuration)
    }

    fn names(list: &Json) -> Vec<&str> {
        list.as_array().unwrap().iter().map(|item| item["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn an_init_container_is_added() {
        let configuration = json!({"spec": {"initContainers": [{"name": "mesh-proxy", "image": "mesh/proxy:v1"}]}});
        let merged = apply_to_pod(configuration).unwrap();
        assert_eq!(merged["spec"]["initContainers"], json!([{"name": "mesh-proxy", "image": "mesh/proxy:v1"}]));
        assert_eq!(merged["spec"]["containers"], pod()["spec"]["containers"]);
    }

    #[test]
    fn containers_merge_by_name_and_new_ones_are_appended() {
        let configuration =
            json!({"spec": {"containers": [{"name": "app", "image": "app:v2"}, {"name": "sidecar", "image": "s"}]}});
        let merged = apply_to_pod(configuration).unwrap();
        let containers = &merged["spec"]["containers"];
        assert_eq!(names(containers), ["app", "sidecar"]);
        assert_eq!(containers[0]["image"], "app:v2");
        assert_eq!(containers[0]["env"], pod()["spec"]["containers"][0]["env"]);
    }

    #[test]
    fn ephemeral_containers_merge_by_name() {
        let mut object = pod();
        object["spec"]["ephemeralContainers"] = json!([{"name": "debug-1", "image": "busybox"}]);
        let configuration = json!({"spec": {"ephemeralContainers": [
            {"name": "debug-1", "image": "registry.example/busybox"},
            {"name": "debug-2", "image": "alpine", "targetContainerName": "app"},
        ]}});
        let merged = apply_configuration("v1", "Pod", &object, &configuration).unwrap();
        let ephemeral = &merged["spec"]["ephemeralContainers"];
        assert_eq!(names(ephemeral), ["debug-1", "debug-2"]);
        assert_eq!(ephemeral[0]["image"], "registry.example/busybox");
    }

    #[test]
    fn env_merges_by_name_in_structured_merge_diffs_order() {
        // NEW precedes the shared B in the configuration: it is placed before B.
        let configuration =
            json!({"spec": {"containers": [{"name": "app", "env": [{"name": "NEW"}, {"name": "B", "value": "b"}]}]}});
        let merged = apply_to_pod(configuration).unwrap();
        assert_eq!(
            merged["spec"]["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "NEW"}, {"name": "B", "value": "b"}])
        );
    }

    #[test]
    fn ports_merge_by_container_port_and_defaulted_protocol() {
        let configuration = json!({"spec": {"containers": [{"name": "app", "ports": [
            {"containerPort": 8080, "name": "http"},
            {"containerPort": 8080, "protocol": "UDP"},
        ]}]}});
        let merged = apply_to_pod(configuration).unwrap();
        assert_eq!(
            merged["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 8080, "protocol": "TCP", "name": "http"}, {"containerPort": 8080, "protocol": "UDP"}])
        );
    }

    #[test]
    fn volume_mounts_merge_by_mount_path_and_volumes_by_name() {
        let configuration = json!({"spec": {
            "containers": [{"name": "app", "volumeMounts": [{"name": "other", "mountPath": "/data"}, {"name": "c", "mountPath": "/c"}]}],
            "volumes": [{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "c", "emptyDir": {}}],
        }});
        let merged = apply_to_pod(configuration).unwrap();
        assert_eq!(
            merged["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "other", "mountPath": "/data"}, {"name": "c", "mountPath": "/c"}])
        );
        assert_eq!(
            merged["spec"]["volumes"],
            json!([{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "c", "emptyDir": {}}])
        );
    }

    #[test]
    fn tolerations_are_atomic_and_refused() {
        let error = apply_to_pod(json!({"spec": {"tolerations": [{"operator": "Exists"}]}})).unwrap_err();
        assert_eq!(error, ApplyError::Atomic { paths: vec![".spec.tolerations".into()] });
        assert_eq!(
            error.to_string(),
            "invalid ApplyConfiguration: may not mutate atomic arrays, maps or structs: .spec.tolerations"
        );
    }

    #[test]
    fn null_tolerations_clear_them() {
        let merged = apply_to_pod(json!({"spec": {"tolerations": null}})).unwrap();
        assert_eq!(merged["spec"]["tolerations"], Json::Null);
    }

    #[test]
    fn capabilities_add_and_drop_are_atomic() {
        let configuration = json!({"spec": {"containers": [
            {"name": "app", "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": []}}},
        ]}});
        let Err(ApplyError::Atomic { mut paths }) = apply_to_pod(configuration) else { panic!("not refused") };
        paths.sort();
        let prefix = ".spec.containers[0].securityContext.capabilities";
        assert_eq!(paths, [format!("{prefix}.add"), format!("{prefix}.drop")]);
    }

    #[test]
    fn a_deployment_merges_its_template() {
        let object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}}, "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "app", "image": "app:v1"}]},
            }},
        });
        let configuration = json!({"spec": {"replicas": 3, "template": {
            "metadata": {"labels": {"mesh": "on"}},
            "spec": {"containers": [{"name": "proxy", "image": "proxy:v1"}]},
        }}});
        let merged = apply_configuration("apps/v1", "Deployment", &object, &configuration).unwrap();
        assert_eq!(merged["spec"]["replicas"], 3);
        assert_eq!(merged["spec"]["template"]["metadata"]["labels"], json!({"app": "d", "mesh": "on"}));
        assert_eq!(names(&merged["spec"]["template"]["spec"]["containers"]), ["app", "proxy"]);
        let selector = json!({"spec": {"selector": {"matchLabels": {"x": "y"}}}});
        let error = apply_configuration("apps/v1", "Deployment", &object, &selector).unwrap_err();
        assert_eq!(error, ApplyError::Atomic { paths: vec![".spec.selector".into()] });
    }

    #[test]
    fn labels_and_annotations_merge_and_the_name_may_change() {
        let configuration =
            json!({"metadata": {"name": "other", "labels": {"mesh": "on"}, "annotations": {"team": "b"}}});
        let merged = apply_to_pod(configuration).unwrap();
        assert_eq!(
            merged["metadata"],
            json!({"name": "other", "labels": {"app": "web", "mesh": "on"}, "annotations": {"team": "b"}})
        );
    }

    #[test]
    fn the_configuration_takes_the_objects_kind() {
        let merged = apply_to_pod(json!({"apiVersion": "v2", "kind": "Other"})).unwrap();
        assert_eq!(merged, pod());
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_path() {
        let error = apply_to_pod(json!({"spec": {"containers": [{"name": "app", "imagex": "x"}]}})).unwrap_err();
        assert_eq!(
            error,
            ApplyError::UnknownField {
                path: ".spec.containers[0].imagex".into(),
                type_name: "io.k8s.api.core.v1.Container".into()
            }
        );
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_refused() {
        let error = apply_to_pod(json!({"spec": {"activeDeadlineSeconds": "ten"}})).unwrap_err();
        assert!(
            matches!(error, ApplyError::WrongType { ref path, expected: "a number", .. } if path == ".spec.activeDeadlineSeconds")
        );
    }

    #[test]
    fn duplicate_keys_in_the_configuration_are_refused() {
        let configuration = json!({"spec": {"containers": [{"name": "s"}, {"name": "s", "image": "b"}]}});
        let error = apply_to_pod(configuration).unwrap_err();
        assert_eq!(error, ApplyError::DuplicateKey { path: ".spec.containers[1]".into(), key: "name=\"s\"".into() });
    }

    #[test]
    fn a_keyed_item_without_key_or_default_is_refused() {
        let object = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}});
        let configuration = json!({"secrets": [{"namespace": "default"}]});
        let error = apply_configuration("v1", "ServiceAccount", &object, &configuration).unwrap_err();
        assert_eq!(error, ApplyError::MissingKey { path: ".secrets[0]".into(), keys: "name".into() });
    }

    #[test]
    fn a_container_without_a_name_takes_the_default_key() {
        let merged = apply_to_pod(json!({"spec": {"containers": [{"image": "anonymous"}]}})).unwrap();
        assert_eq!(merged["spec"]["containers"][1], json!({"image": "anonymous"}));
    }

    #[test]
    fn a_null_item_is_refused() {
        let error = apply_to_pod(json!({"spec": {"containers": [null]}})).unwrap_err();
        assert!(matches!(error, ApplyError::BadItem { ref path, .. } if path == ".spec.containers[0]"));
    }

    #[test]
    fn a_configuration_that_is_not_an_object_is_refused() {
        let error = apply_to_pod(json!("teapot")).unwrap_err();
        assert_eq!(error, ApplyError::NotAnObject { found: "the string \"teapot\"".into() });
    }

    #[test]
    fn a_kind_without_schema_merges_maps_and_replaces_lists() {
        let object =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"a": 1, "items": [1, 2], "m": {"x": 1}}});
        let configuration = json!({"spec": {"items": [3], "m": {"y": 2}}});
        let merged = apply_configuration("example.com/v1", "Widget", &object, &configuration).unwrap();
        assert_eq!(merged["spec"], json!({"a": 1, "items": [3], "m": {"x": 1, "y": 2}}));
    }

    #[test]
    fn every_type_a_field_names_is_in_the_table() {
        let mut named = Vec::new();
        for (_, _, fields) in schema::TYPES {
            for (_, shape) in *fields {
                let (Shape::Struct(name) | Shape::AtomicStruct(name)) = shape else { continue };
                named.push(*name);
            }
        }
        named.extend(schema::KINDS.iter().map(|(_, _, root)| *root));
        for name in named {
            assert!(schema::TYPES.binary_search_by(|(n, _, _)| (*n).cmp(name)).is_ok(), "{name}");
        }
    }

    /// What the API server's error is about, in [`ApplyError`]'s terms.
    fn class_of_go_error(message: &str) -> &'static str {
        [
            ("may not mutate atomic", "Atomic"),
            ("field not declared in schema", "UnknownField"),
            ("duplicate entries for key", "DuplicateKey"),
            ("omits all key fields", "MissingKey"),
            ("may not have", "BadItem"),
            ("associative list without keys", "BadItem"),
            (": expected ", "WrongType"),
        ]
        .iter()
        .find(|(text, _)| message.contains(text))
        .map_or("unknown", |(_, class)| class)
    }

    fn class_of(error: &ApplyError) -> &'static str {
        match error {
            ApplyError::NotAnObject { .. } => "NotAnObject",
            ApplyError::UnknownField { .. } => "UnknownField",
            ApplyError::WrongType { .. } => "WrongType",
            ApplyError::MissingKey { .. } => "MissingKey",
            ApplyError::DuplicateKey { .. } => "DuplicateKey",
            ApplyError::BadItem { .. } => "BadItem",
            ApplyError::Atomic { .. } => "Atomic",
            ApplyError::InvalidObject { .. } => "InvalidObject",
        }
    }

    /// The cases of tests/data/apply, merged by the API server's own code
    /// (tests/apply-golden), give the same objects and the same refusals.
    #[test]
    fn agrees_with_the_api_server() {
        let cases: Vec<Json> = serde_json::from_str(include_str!("../../tests/data/apply/cases.json")).unwrap();
        let expected: Vec<Json> = serde_json::from_str(include_str!("../../tests/data/apply/expected.json")).unwrap();
        assert_eq!(cases.len(), expected.len(), "regenerate expected.json");
        for (case, expected) in cases.iter().zip(&expected) {
            let name = case["name"].as_str().unwrap();
            assert_eq!(expected["name"], name, "regenerate expected.json");
            let api_version = case["apiVersion"].as_str().unwrap();
            let kind = case["kind"].as_str().unwrap();
            let got = apply_configuration(api_version, kind, &case["object"], &case["configuration"]);
            match (got, expected["error"].as_str()) {
                (Ok(merged), None) => assert_eq!(merged, expected["result"], "{name}"),
                (Err(error), Some(message)) => {
                    assert_eq!(class_of(&error), class_of_go_error(message), "{name}: {error} / {message}");
                    if let ApplyError::Atomic { mut paths } = error {
                        let (_, listed) = message.split_once("structs: ").unwrap();
                        let mut go_paths: Vec<&str> = listed.split(", ").collect();
                        paths.sort();
                        go_paths.sort();
                        assert_eq!(paths, go_paths, "{name}");
                    }
                }
                (got, message) => panic!("{name}: got {got:?}, the API server {message:?}"),
            }
        }
    }
}
