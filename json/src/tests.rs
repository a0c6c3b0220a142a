use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn parse(text: &[u8]) -> Value {
    serde_json::from_slice(text).unwrap()
}

#[test]
fn finds_members_and_elements_of_a_request() {
    let request = br#" { "uid" : "1", "kind": {"kind": "Pod"},
        "object": {"metadata": {"name": "web", "labels": {"a\"b": "c\\"}},
                   "spec": {"containers": [ {"name": "app", "ports": [1, 2.5e3, -3]}, {"name": "x", "tty": true} ]}},
        "oldObject": null } "#;
    let keys: Vec<_> = members(request).unwrap().map(|(k, _)| k.0).collect();
    assert_eq!(keys, [&b"uid"[..], b"kind", b"object", b"oldObject"]);
    let spec = member(member(request, "object").unwrap(), "spec").unwrap();
    let names: Vec<Value> =
        elements(member(spec, "containers").unwrap()).map(|c| parse(member(c, "name").unwrap())).collect();
    assert_eq!(names, [json!("app"), json!("x")]);
    assert!(is_null(member(request, "oldObject").unwrap()));
    assert_eq!(member(request, "missing"), None);
}

#[test]
fn keys_compare_unescaped() {
    let object = br#"{"sp\u0065c": 1, "\ud83d\ude00": 2, "a\/b": 3}"#;
    assert_eq!(member(object, "spec"), Some(&b"1"[..]));
    assert_eq!(member(object, "\u{1F600}"), Some(&b"2"[..]));
    assert_eq!(member(object, "a/b"), Some(&b"3"[..]));
    assert_eq!(member(br#"{"\ud83d": 1}"#, "x"), None);
    let names: Vec<_> = members(object).unwrap().map(|(key, _)| key.name().unwrap().into_owned()).collect();
    assert_eq!(names, ["spec", "\u{1F600}", "a/b"]);
}

#[test]
fn member_start_skips_only_what_comes_before() {
    let review = br#"{"kind": "AdmissionReview", "request": {"uid": "1"}, "x": 2}"#;
    let start = member_start(review, "request").unwrap();
    assert_eq!(&review[start..skip_value(review, start).unwrap()], br#"{"uid": "1"}"#);
    assert_eq!(member_start(review, "missing"), None);
    // The value itself is never looked at: a truncated one still has a start.
    assert_eq!(member_start(br#"{"a": 1, "request": {"#, "request"), Some(20));
}

#[test]
fn range_of_places_a_slice_in_its_text() {
    let text = br#"{"a": [1, 2]}"#;
    let value = member(text, "a").unwrap();
    assert_eq!(&text[range_of(text, value)], value);
}

#[test]
fn a_repeated_member_is_its_last_value() {
    assert_eq!(member(br#"{"privileged": false, "privileged": true}"#, "privileged"), Some(&b"true"[..]));
}

#[test]
fn non_objects_have_no_members() {
    assert!(members(b"[1]").is_none());
    assert!(members(b"7").is_none());
    assert_eq!(elements(b"{\"a\": 1}").count(), 0);
    assert_eq!(member(b"", "a"), None);
}

#[test]
fn broken_text_ends_without_panic_or_endless_loop() {
    for text in
        [&b"{\"a\": [1, 2"[..], b"[,,,]", b"{\"a\" 1}", b"{\"a\":", b"[\"\\", b"{\"a\":1,,\"b\":2}", b"]]]", b"[{]"]
    {
        let _ = members(text).map(|m| m.count());
        let _ = elements(text).count();
        let _ = member(text, "a");
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<i32>().prop_map(|i| Value::from(f64::from(i) + 0.5)),
        any::<String>().prop_map(Value::from),
        "[a-z\"\\\\/]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Each member's and element's slice parses to what serde_json sees there.
fn agrees_with_serde(value: &Value, text: &[u8]) {
    match value {
        Value::Object(map) => {
            let found: Vec<_> = members(text).unwrap().collect();
            assert_eq!(found.len(), map.len());
            for ((key, slice), (name, expected)) in found.iter().zip(map) {
                assert!(key.is(name));
                assert_eq!(key.name().as_deref(), Some(name.as_str()));
                assert_eq!(&parse(slice), expected);
                assert_eq!(&parse(member(text, name).unwrap()), expected);
                let start = member_start(text, name).unwrap();
                assert_eq!(&text[start..skip_value(text, start).unwrap()], *slice);
                agrees_with_serde(expected, slice);
            }
        }
        Value::Array(items) => {
            let found: Vec<_> = elements(text).collect();
            assert_eq!(found.len(), items.len());
            for (slice, expected) in found.iter().zip(items) {
                assert_eq!(&parse(slice), expected);
                agrees_with_serde(expected, slice);
            }
        }
        _ => assert_eq!(skip_value(text, 0), Some(text.len())),
    }
}

/// Walking with an index of the whole text finds what walking without finds.
fn index_agrees<'t>(value: &'t [u8], index: &Index<'t>) {
    if let Some(plain) = members(value) {
        let indexed: Vec<_> = members_in(value, Some(index)).unwrap().collect();
        assert_eq!(indexed, plain.collect::<Vec<_>>());
        for (_, member) in indexed {
            index_agrees(member, index);
        }
    } else {
        let indexed: Vec<_> = elements_in(value, Some(index)).collect();
        assert_eq!(indexed, elements(value).collect::<Vec<_>>());
        for element in indexed {
            index_agrees(element, index);
        }
    }
}

#[test]
fn an_index_only_serves_its_own_text() {
    let text = br#"{"a": {"b": [1, {"c": 2}]}, "d": "}"}"#;
    let index = Index::new(text);
    assert_eq!(member_in(text, "d", Some(&index)), Some(&br#""}""#[..]));
    let copy = text.to_vec();
    assert_eq!(member_in(&copy, "a", Some(&Index::new(text))), Some(&br#"{"b": [1, {"c": 2}]}"#[..]));
    // A cut slice: the container does not close inside it, so it is scanned.
    assert_eq!(members_in(&text[..12], Some(&index)).unwrap().count(), 0);
}

proptest! {
    #[test]
    fn an_index_agrees_with_scanning(value in any_json()) {
        let text = serde_json::to_vec_pretty(&value).unwrap();
        let index = Index::new(&text);
        index_agrees(&text, &index);
    }

    #[test]
    fn agrees_with_serde_json_on_valid_json(value in any_json()) {
        agrees_with_serde(&value, &serde_json::to_vec(&value).unwrap());
        agrees_with_serde(&value, &serde_json::to_vec_pretty(&value).unwrap());
    }

    #[test]
    fn any_bytes_end_without_panic(text in prop::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b','), Just(b':'), any::<u8>()], 0..64), name in "[a-z]{0,3}") {
        let _ = members(&text).map(|m| m.count());
        let _ = elements(&text).count();
        let _ = member(&text, &name);
    }
}
