//! YAML as egate reads and writes it: [`serde_saphyr`], configured once
//! here so every reader (manifests, test suites, requests, pods) agrees.
//!
//! The options keep the behaviour egate had with `serde_yaml` 0.9: YAML 1.2
//! booleans only (`yes`, `no`, `on`, `off` are strings, and refused where a
//! boolean is expected), a null-like scalar read into a string is its text,
//! and errors are plain text: the message names the field path, and the
//! line and column are carried apart ([`YamlError::at`]) so callers can
//! print `FILE:LINE:COL`.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// What is wrong with YAML text: the message (`field.path: what`), and
/// where, when the parser knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The field path, when not the root, then the parser's message without
    /// its location.
    pub message: String,
    /// Line and column, from 1, in the whole text.
    pub at: Option<(usize, usize)>,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "{} at line {line} column {column}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for YamlError {}

impl YamlError {
    fn new(error: &serde_saphyr::Error) -> Self {
        let at = error.location().map(|l| (to_usize(l.line()), to_usize(l.column())));
        let path = FIELD_PATH.with(|p| p.borrow_mut().take());
        let mut message = message_without_location(error);
        if let Some(path) = path.map(|p| unknown_field_parent(p, &message)).filter(|p| p != ".") {
            message = format!("{path}: {message}");
        }
        Self { message, at }
    }
}

/// The path of an unknown field's mapping rather than of the field, as
/// `serde_yaml` gave it (`cases[0]`, not `cases[0].expct`): the message
/// names the field already.
fn unknown_field_parent(path: String, message: &str) -> String {
    let Some(field) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next()) else {
        return path;
    };
    if path == field {
        return ".".into();
    }
    match path.strip_suffix(field).and_then(|p| p.strip_suffix('.')) {
        Some(parent) => parent.to_string(),
        None => path,
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The parser's message without the " at line L, column C" it appends (the
/// location is carried apart).
fn message_without_location(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    match text.rfind(" at line ") {
        Some(cut) if error.location().is_some() => text[..cut].to_string(),
        _ => text,
    }
}

/// The options every egate reader uses.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        null_as_string: true,
        with_snippet: false,
    }
}

thread_local! {
    /// The field path of the last error [`Pathed`] saw on this thread.
    static FIELD_PATH: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `T`, remembering the field path of an error while passing the parser's
/// error on untouched (so it keeps its location).
struct Pathed<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Pathed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_path_to_error::deserialize(deserializer).map(Pathed).map_err(|error| {
            FIELD_PATH.with(|p| *p.borrow_mut() = Some(error.path().to_string()));
            error.into_inner()
        })
    }
}

/// Reads one YAML (or JSON) document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    FIELD_PATH.with(|p| p.borrow_mut().take());
    serde_saphyr::from_str_with_options::<Pathed<T>>(text, options()).map(|p| p.0).map_err(|e| YamlError::new(&e))
}

/// Reads one YAML (or JSON) document from UTF-8 bytes.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, YamlError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| YamlError { message: format!("it is not UTF-8 text: {e}"), at: None })?;
    from_str(text)
}

/// Reads a stream of YAML documents separated by `---`, one at a time,
/// straight into `T` (so errors keep their location). Empty documents (a
/// trailing `---`, a document of comments only, `~`) are skipped. The error
/// comes with the index, from 0, of the document it is in, counting the
/// documents that are not empty.
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, (usize, YamlError)> {
    FIELD_PATH.with(|p| p.borrow_mut().take());
    let mut options = options();
    // The text is in memory already: no cap on its size beyond the budget's.
    if let Some(budget) = options.budget.as_mut() {
        budget.max_reader_input_bytes = None;
    }
    let mut reader = text.as_bytes();
    let mut values = Vec::new();
    for document in serde_saphyr::read_with_options::<_, Pathed<T>>(&mut reader, options) {
        match document {
            Ok(value) => values.push(value.0),
            Err(e) => return Err((values.len(), YamlError::new(&e))),
        }
    }
    Ok(values)
}

/// YAML text of `value`.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        on: bool,
    }

    #[test]
    fn documents_skip_empty_ones_and_errors_name_document_field_and_place() {
        let docs: Vec<Doc> = documents("# a comment\n---\nname: a\n---\n---\nname: b\n---\n").unwrap();
        assert_eq!(docs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let (index, err) = documents::<Doc>("name: a\n---\nname: b\ninner:\n  on: true\n  of: 1\n").unwrap_err();
        assert_eq!(index, 1);
        assert!(err.message.starts_with("inner: unknown field `of`"), "{err}");
        assert_eq!(err.at, Some((6, 3)));
        let (_, err) = documents::<Doc>("name: a\ninner: {on: yes}\n").unwrap_err();
        assert!(err.message.starts_with("inner.on: "), "{err}");
        assert_eq!(err.at, Some((2, 13)));
    }

    #[test]
    fn yaml_1_2_scalars() {
        let value: Value = from_str("a: yes\nb: off\nc: true\nd: 0x1f\ne: ~\nf: '1'\n").unwrap();
        assert_eq!(value, json!({"a": "yes", "b": "off", "c": true, "d": 31, "e": null, "f": "1"}));
        let strings: BTreeMap<String, String> = from_str("a: yes\nb: 1\nc: ~\n").unwrap();
        assert_eq!(strings["a"], "yes");
        assert_eq!(strings["b"], "1");
        assert_eq!(strings["c"], "~");
        assert!(from_str::<BTreeMap<String, bool>>("a: on\n").is_err());
    }

    #[test]
    fn written_yaml_reads_back() {
        let value = json!({"n": 1.5, "s": "yes", "t": "true", "l": [], "m": {}, "text": "a\nb\n", "z": null});
        let text = to_string(&value).unwrap();
        assert_eq!(from_str::<Value>(&text).unwrap(), value, "{text}");
    }
}
