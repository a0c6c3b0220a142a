#!/usr/bin/env python3
"""Writes engine/src/admission_policy/apply_schema.rs, the table that
admission_policy/apply.rs merges a MutatingAdmissionPolicy's
ApplyConfiguration with: for each kind of core/v1, apps/v1 and batch/v1 its
root type, and for each type reachable from those its fields, as
structured-merge-diff sees them once kube-openapi's schemaconv has converted
the OpenAPI v3 documents (k8s.io/kube-openapi/pkg/schemaconv/openapi.go):

- `x-kubernetes-list-type` map/set/atomic, else the patch strategy `merge`
  with its merge key, else atomic;
- `x-kubernetes-map-type` atomic on the type or on the field that refers to it;
- the defaults of key fields (a keyed item without a key field takes its
  default, e.g. a port's `protocol: TCP`);
- scalar fields by kind, so that a field the schema does not declare is refused.

    scripts/gen-apply-schema.py [KUBERNETES_MODULE_DIR] > engine/src/admission_policy/apply_schema.rs
    rustfmt --edition 2024 --config-path rustfmt.toml engine/src/admission_policy/apply_schema.rs

KUBERNETES_MODULE_DIR defaults to the Go module cache's k8s.io/kubernetes@v1.37.2."""
import json
import os
import sys

VERSION = 'v1.37.2'
module = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(f'~/go/pkg/mod/k8s.io/kubernetes@{VERSION}')
DOCS = {
    'api__v1_openapi.json': ('', 'v1'),
    'apis__apps__v1_openapi.json': ('apps', 'v1'),
    'apis__batch__v1_openapi.json': ('batch', 'v1'),
}

schemas = {}
kinds = []
for doc, (group, version) in DOCS.items():
    found = json.load(open(os.path.join(module, 'api/openapi-spec/v3', doc)))['components']['schemas']
    schemas.update(found)
    for name, schema in sorted(found.items()):
        for gvk in schema.get('x-kubernetes-group-version-kind', []):
            # The meta types (DeleteOptions, Status...) name every group: only
            # the group's own kinds, and not their lists, are admitted objects.
            if (gvk['group'], gvk['version']) != (group, version) or name.startswith('io.k8s.apimachinery.'):
                continue
            if gvk['kind'].endswith('List'):
                continue
            api_version = f'{group}/{version}' if group else version
            kinds.append((api_version, gvk['kind'], name))

SCALARS = {'integer': 'n', 'number': 'n', 'boolean': 'b'}


def ref_of(prop):
    """The named type a property refers to, as schemaconv's makeOpenAPIRef reads it."""
    if '$ref' in prop:
        return prop['$ref'].split('/')[-1]
    if len(prop.get('allOf', [])) == 1 and '$ref' in prop['allOf'][0]:
        return prop['allOf'][0]['$ref'].split('/')[-1]
    return None


def scalar_kind(schema):
    """A primitive's kind (schemaconv's convertPrimitive): s string, n numeric, b boolean, u untyped."""
    typ = schema['type']
    if typ == 'string':
        return 's' if schema.get('format', '') in ('', 'byte') else 'u'
    return SCALARS.get(typ, 'u')


def list_shape(prop, wanted):
    """A list's shape (schemaconv's getListElementRelationship)."""
    items = prop.get('items')
    if items is None:
        raise SystemExit(f'a list without items: {prop}')
    item = shape_of(items, wanted)
    ext_type = prop.get('x-kubernetes-list-type')
    keys = None
    if ext_type == 'map':
        keys = prop['x-kubernetes-list-map-keys']
    elif ext_type is None and prop.get('x-kubernetes-patch-strategy') in ('merge', 'merge,retainKeys'):
        key = prop.get('x-kubernetes-patch-merge-key')
        ext_type = 'map' if key else 'set'
        keys = [key] if key else None
    if ext_type == 'map':
        name = ref_of(items)
        if name is None:
            raise SystemExit(f'a keyed list of unnamed items: {prop}')
        fields = schemas[name].get('properties', {})
        defaults = ', '.join(
            f'("{k}", Some({json.dumps(json.dumps(fields[k]["default"]))}))' if 'default' in fields.get(k, {})
            else f'("{k}", None)'
            for k in keys)
        return f'KeyedList(&[{defaults}], &{item})'
    if ext_type == 'set':
        return f'SetList(&{item})'
    return f'AtomicList(&{item})'


def shape_of(prop, wanted):
    """The Rust `Shape` of a property, or `None` for a scalar (listed apart).
    Named struct types it reaches are added to `wanted`."""
    name = ref_of(prop)
    if name is not None:
        target = schemas[name]
        if 'type' not in target:
            return 'Deduced'  # Quantity, IntOrString: any scalar, list or map
        if target['type'] != 'object':
            return {'s': 'Str', 'n': 'Num', 'b': 'Bool', 'u': 'Any'}[scalar_kind(target)]
        if not target.get('properties'):
            return object_shape(target, prop, wanted)
        wanted.add(name)
        map_type = prop.get('x-kubernetes-map-type', target.get('x-kubernetes-map-type'))
        return f'{"AtomicStruct" if map_type == "atomic" else "Struct"}("{name}")'
    typ = prop.get('type')
    if typ == 'array':
        return list_shape(prop, wanted)
    if typ == 'object':
        if prop.get('properties'):
            raise SystemExit(f'an inline struct: {prop}')
        return object_shape(prop, prop, wanted)
    if typ is None:
        return 'Deduced'
    return {'s': 'Str', 'n': 'Num', 'b': 'Bool', 'u': 'Any'}[scalar_kind(prop)]


def object_shape(schema, prop, wanted):
    """An object without properties: a map of its additionalProperties, or free-form."""
    extra = schema.get('additionalProperties')
    if extra is None or extra is True:
        value = 'Deduced'
    else:
        value = shape_of(extra, wanted)
    atomic = prop.get('x-kubernetes-map-type', schema.get('x-kubernetes-map-type')) == 'atomic'
    return f'{"AtomicMap" if atomic else "Map"}(&{value})'


def type_entry(name, wanted):
    props = schemas[name].get('properties', {})
    scalars, fields = [], []
    for field in sorted(props):
        shape = shape_of(props[field], wanted)
        if shape in ('Str', 'Num', 'Bool', 'Any'):
            scalars.append(f'{field}:{shape[0].lower()}')
        else:
            fields.append(f'        ("{field}", {shape}),')
    body = '\n'.join(fields)
    return f'    ("{name}", "{" ".join(scalars)}", &[\n{body}\n    ]),' if fields else \
        f'    ("{name}", "{" ".join(scalars)}", &[]),'


wanted = {root for _, _, root in kinds}
done = {}
while wanted - done.keys():
    for name in sorted(wanted - done.keys()):
        done[name] = type_entry(name, wanted)

print(f'''// Generated by scripts/gen-apply-schema.py from the OpenAPI v3 documents of
// Kubernetes {VERSION} (api/openapi-spec/v3 of core/v1, apps/v1, batch/v1): do not
// edit, run the script again. For each type reachable from a kind, its scalar
// fields ("name:kind", kind s string, n numeric, b boolean, a any scalar) and
// its other fields with the shape structured-merge-diff merges them by.

use super::Shape::*;
use super::TypeEntry;

/// The root type of each kind: (apiVersion, kind, type).
pub(super) const KINDS: &[(&str, &str, &str)] = &[''')
for api_version, kind, root in sorted(kinds):
    print(f'    ("{api_version}", "{kind}", "{root}"),')
print('''];

/// Each type by name (sorted): its scalar fields, and its other fields.
#[rustfmt::skip]
pub(super) const TYPES: &[TypeEntry] = &[''')
for name in sorted(done):
    print(done[name])
print('];')
