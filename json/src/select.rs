//! Cutting JSON down to the members a reader declared it reads, in the
//! same shape, without parsing the rest: what egate's host hands a guest
//! that declares its reads.
//!
//! ```
//! use egate_json::Selection;
//!
//! let reads = Selection::parse(["object.spec.ephemeralContainers", "oldObject.spec.ephemeralContainers[*].name"]).unwrap();
//! let request = br#"{"uid": "1", "object": {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app"}],
//!   "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}},
//!   "oldObject": {"spec": {"ephemeralContainers": [{"name": "old", "image": "busybox"}]}}}"#;
//! let mut cut = Vec::new();
//! reads.cut(request, &mut cut);
//! assert_eq!(
//!     std::str::from_utf8(&cut).unwrap(),
//!     r#"{"object":{"spec":{"ephemeralContainers":[{"name": "dbg", "image": "busybox"}]}},"oldObject":{"spec":{"ephemeralContainers":[{"name":"old"}]}}}"#
//! );
//! ```

use std::collections::BTreeMap;

use crate::{Key, skip_string, skip_value, skip_whitespace};

/// The members a reader reads: a tree of member names, where a leaf is read
/// whole and `[*]` reads the same members of each element of an array.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Read the whole value.
    whole: bool,
    /// Members of an object, by name.
    members: BTreeMap<String, Selection>,
    /// What is read of each element of an array (`[*]`).
    each: Option<Box<Selection>>,
}

impl Selection {
    /// Reads paths such as `object.spec.securityContext`, `userInfo` or
    /// `oldObject.spec.ephemeralContainers[*].name`; the error names the
    /// path that cannot be read.
    pub fn parse<I, S>(paths: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut root = Selection::default();
        for path in paths {
            let path = path.as_ref().trim();
            if path.is_empty() {
                continue;
            }
            root.add(path).map_err(|why| format!("read {path:?}: {why}"))?;
        }
        Ok(root)
    }

    fn add(&mut self, path: &str) -> Result<(), String> {
        let mut at = self;
        for segment in path.split('.') {
            let (name, each) = match segment.strip_suffix("[*]") {
                Some(name) => (name, true),
                None => (segment, false),
            };
            if name.is_empty() || name.contains(['[', ']', '*', '"']) {
                return Err(format!(
                    "{segment:?} is not a member name (write names joined by dots, [*] for each element)"
                ));
            }
            at = at.members.entry(name.to_string()).or_default();
            if each {
                at = at.each.get_or_insert_with(Default::default);
            }
        }
        at.whole = true;
        Ok(())
    }

    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        !self.whole && self.members.is_empty() && self.each.is_none()
    }

    /// Writes to `out` the selected members of `text` (valid JSON), in the
    /// order they come, each as written; an unselected member is left out.
    /// A selected member whose value has another shape (a scalar where an
    /// object was expected) is copied as it is. One pass: every byte is
    /// looked at once, however deep the selection goes.
    pub fn cut(&self, text: &[u8], out: &mut Vec<u8>) {
        self.cut_known(text, &KnownValues::default(), out);
    }

    /// [`Selection::cut`], jumping over the values whose extent `known`
    /// gives instead of looking at their bytes: the cut then costs what it
    /// writes, and the members it passes, not the size of the text.
    pub fn cut_known(&self, text: &[u8], known: &KnownValues, out: &mut Vec<u8>) {
        let _ = self.cut_at(text, 0, known, out);
    }

    /// Cuts the value starting at or after `at`; returns where it ends.
    fn cut_at(&self, text: &[u8], at: usize, known: &KnownValues, out: &mut Vec<u8>) -> Option<usize> {
        let at = skip_whitespace(text, at);
        match text.get(at)? {
            _ if self.whole => {}
            b'{' if !self.members.is_empty() => return self.cut_object(text, at, known, out),
            b'[' if self.each.is_some() => return self.cut_array(text, at, known, out),
            _ => {}
        }
        let end = known.skip(text, at)?;
        out.extend_from_slice(&text[at..end]);
        Some(end)
    }

    fn cut_object(&self, text: &[u8], open: usize, known: &KnownValues, out: &mut Vec<u8>) -> Option<usize> {
        out.push(b'{');
        let mut at = open + 1;
        let mut first = true;
        loop {
            at = skip_whitespace(text, at);
            match text.get(at)? {
                b'}' => break,
                b',' => at += 1,
                b'"' => {
                    let key_end = skip_string(text, at)?;
                    let key = Key(&text[at + 1..key_end - 1]);
                    let colon = skip_whitespace(text, key_end);
                    (text.get(colon) == Some(&b':')).then_some(())?;
                    let value = skip_whitespace(text, colon + 1);
                    match key.name().and_then(|name| self.members.get(name.as_ref())) {
                        Some(selection) => {
                            if !first {
                                out.push(b',');
                            }
                            first = false;
                            out.extend_from_slice(&text[at..key_end]);
                            out.push(b':');
                            at = selection.cut_at(text, value, known, out)?;
                        }
                        None => at = known.skip(text, value)?,
                    }
                }
                _ => return None,
            }
        }
        out.push(b'}');
        Some(at + 1)
    }

    fn cut_array(&self, text: &[u8], open: usize, known: &KnownValues, out: &mut Vec<u8>) -> Option<usize> {
        let each = self.each.as_deref()?;
        out.push(b'[');
        let mut at = open + 1;
        let mut first = true;
        loop {
            at = skip_whitespace(text, at);
            match text.get(at)? {
                b']' => break,
                b',' => at += 1,
                _ => {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    at = each.cut_at(text, at, known, out)?;
                }
            }
        }
        out.push(b']');
        Some(at + 1)
    }

    /// Everything `other` selects is selected too (a batch reads the union
    /// of its members' reads).
    pub fn merge(&mut self, other: &Selection) {
        self.whole |= other.whole;
        for (name, selection) in &other.members {
            self.members.entry(name.clone()).or_default().merge(selection);
        }
        if let Some(each) = &other.each {
            self.each.get_or_insert_with(Default::default).merge(each);
        }
    }
}

/// Values of a text whose extent a reader already knows (the validating
/// pass that found `object`'s members, say): each as the range of bytes
/// from its first to just past its last.
#[derive(Debug, Clone, Default)]
pub struct KnownValues {
    /// `(start, end)`, sorted by start.
    spans: Vec<(usize, usize)>,
}

impl KnownValues {
    /// From the ranges of values in the text.
    pub fn new(mut spans: Vec<(usize, usize)>) -> Self {
        spans.sort_unstable();
        Self { spans }
    }

    /// How many values are known.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Where the value starting at `start` ends: known, or found by
    /// skipping it. A known range is trusted only when it starts and ends
    /// as a value does.
    fn skip(&self, text: &[u8], start: usize) -> Option<usize> {
        if let Ok(index) = self.spans.binary_search_by_key(&start, |(s, _)| *s) {
            let end = self.spans[index].1;
            let closes = |open: u8, close: u8| text.get(start) == Some(&open) && text.get(end - 1) == Some(&close);
            if end > start && end <= text.len() && (closes(b'{', b'}') || closes(b'[', b']') || closes(b'"', b'"')) {
                return Some(end);
            }
        }
        skip_value(text, start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(paths: &[&str], text: &str) -> String {
        let mut out = Vec::new();
        Selection::parse(paths).unwrap().cut(text.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn known_values_are_jumped_over_with_the_same_cut() {
        let text = r#"{"uid": "1", "object": {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app"}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}}, "oldObject": null}"#;
        let reads = Selection::parse(["object.spec.ephemeralContainers", "uid"]).unwrap();
        let span = |value: &str| {
            let start = text.find(value).unwrap();
            (start, start + value.len())
        };
        let known = KnownValues::new(vec![span(r#"{"name": "web"}"#), span(r#"[{"name": "app"}]"#)]);
        let (mut whole, mut jumped) = (Vec::new(), Vec::new());
        reads.cut(text.as_bytes(), &mut whole);
        reads.cut_known(text.as_bytes(), &known, &mut jumped);
        assert_eq!(String::from_utf8(jumped).unwrap(), String::from_utf8(whole).unwrap());
        // A range that does not end as its value does is not trusted.
        let wrong = KnownValues::new(vec![(span(r#"[{"name": "app"}]"#).0, span(r#"[{"name": "app"}]"#).1 - 1)]);
        let mut out = Vec::new();
        reads.cut_known(text.as_bytes(), &wrong, &mut out);
        assert_eq!(out, cut(&["object.spec.ephemeralContainers", "uid"], text).into_bytes());
    }

    #[test]
    fn only_selected_members_are_kept_in_their_order_and_shape() {
        let text = r#"{"b": 1, "a": {"x": [1, 2], "y": "z"}, "c": null}"#;
        assert_eq!(cut(&["a.y", "c"], text), r#"{"a":{"y":"z"},"c":null}"#);
        assert_eq!(cut(&["a"], text), r#"{"a":{"x": [1, 2], "y": "z"}}"#);
        assert_eq!(cut(&["missing"], text), "{}");
        assert_eq!(cut(&["b.deeper"], text), r#"{"b":1}"#, "a scalar where an object was expected is copied");
    }

    #[test]
    fn each_element_keeps_its_selected_members() {
        let text = r#"{"list": [{"name": "a", "big": [1]}, {"big": 2}, 7]}"#;
        assert_eq!(cut(&["list[*].name"], text), r#"{"list":[{"name":"a"},{},7]}"#);
        assert_eq!(cut(&["list[*]"], text), r#"{"list":[{"name": "a", "big": [1]},{"big": 2},7]}"#);
    }

    #[test]
    fn escaped_keys_are_matched_by_their_names_and_written_as_they_were() {
        assert_eq!(cut(&["spec"], r#"{"sp\u0065c": 1, "x": 2}"#), r#"{"sp\u0065c":1}"#);
    }

    #[test]
    fn bad_paths_are_refused_and_unions_merge() {
        assert!(Selection::parse(["a..b"]).unwrap_err().contains("\"a..b\""));
        assert!(Selection::parse(["a[0]"]).is_err());
        let mut a = Selection::parse(["x.y"]).unwrap();
        a.merge(&Selection::parse(["x.z", "w"]).unwrap());
        assert_eq!(a, Selection::parse(["x.y", "x.z", "w"]).unwrap());
    }
}
