//! Finding values in JSON text that is already known to be valid, without
//! parsing what lies between.
//!
//! egate validates every AdmissionReview once, when it arrives. After that,
//! the host and its guests only need a few values out of a 10 KB request
//! (the routing facts, a pod's spec, the names of the old ephemeral
//! containers). Parsing the rest again with a validating parser is most of
//! the time a policy takes inside wasm, so this crate skips over values by
//! looking only at quotes, backslashes and brackets, eight bytes at a time
//! inside strings, and hands back the slices that matter for `serde_json`
//! to parse.
//!
//! On text that is not valid JSON the functions never panic and never loop:
//! they return `None` or slices that a parser will then refuse.
//!
//! ```
//! let request = br#"{"uid": "1", "object": {"spec": {"containers": [{"name": "app"}]}}}"#;
//! let object = egate_json::member(request, "object").unwrap();
//! let spec = egate_json::member(object, "spec").unwrap();
//! let containers = egate_json::member(spec, "containers").unwrap();
//! let names: Vec<&[u8]> = egate_json::elements(containers)
//!     .filter_map(|c| egate_json::member(c, "name"))
//!     .collect();
//! assert_eq!(names, [&b"\"app\""[..]]);
//! ```

mod select;
pub use select::{KnownValues, Selection};

/// The value of member `name` of `object` (the last one if the name repeats,
/// as Go's and serde_json's maps decide). `None` when `object` is not an
/// object or has no such member.
pub fn member<'t>(object: &'t [u8], name: &str) -> Option<&'t [u8]> {
    member_in(object, name, None)
}

/// [`member`], jumping over containers with `index` when the object is
/// part of the text it was built from.
pub fn member_in<'t>(object: &'t [u8], name: &str, index: Option<&Index<'t>>) -> Option<&'t [u8]> {
    members_in(object, index)?.filter(|(key, _)| key.is(name)).last().map(|(_, value)| value)
}

/// Where the value of the first member `name` of `object` starts: only the
/// members before it are skipped, not the value itself. `None` when
/// `object` is not an object or has no such member.
pub fn member_start(object: &[u8], name: &str) -> Option<usize> {
    let mut members = members(object)?;
    loop {
        let (key, value_start) = members.next_key()?;
        if key.is(name) {
            return Some(value_start);
        }
        members.at = skip_value(members.text, value_start)?;
    }
}

/// The members of a JSON object, in order: each key (still escaped) and
/// its value's text. `None` when `object` is not an object.
pub fn members(object: &[u8]) -> Option<Members<'_, '_>> {
    members_in(object, None)
}

/// [`members`], jumping over containers with `index`.
pub fn members_in<'t, 'i>(object: &'t [u8], index: Option<&'i Index<'t>>) -> Option<Members<'t, 'i>> {
    let start = skip_whitespace(object, 0);
    (object.get(start) == Some(&b'{')).then_some(Members { text: object, at: start + 1, index })
}

/// The elements of a JSON array, in order; nothing when `array` is not an
/// array.
pub fn elements(array: &[u8]) -> Elements<'_, '_> {
    elements_in(array, None)
}

/// [`elements`], jumping over containers with `index`.
pub fn elements_in<'t, 'i>(array: &'t [u8], index: Option<&'i Index<'t>>) -> Elements<'t, 'i> {
    let start = skip_whitespace(array, 0);
    let at = if array.get(start) == Some(&b'[') { start + 1 } else { array.len() };
    Elements { text: array, at, index }
}

/// Where each object and array of a JSON text ends, found in one pass.
/// Walking the text again with it (the `*_in` functions) jumps over a
/// container instead of scanning it: reading a few fields at several depths
/// of a request then costs one scan of it, not one per level.
#[derive(Debug, Clone, Default)]
pub struct Index<'t> {
    /// The indexed text: the index serves slices of it.
    text: &'t [u8],
    /// (start, end) of each container, by start; end 0 when it never closes.
    spans: Vec<(u32, u32)>,
}

impl<'t> Index<'t> {
    /// Indexes `text`. Broken text gives an index of what could be read.
    pub fn new(text: &'t [u8]) -> Self {
        let mut index = Index { text, spans: Vec::new() };
        if u32::try_from(text.len()).is_err() {
            return index;
        }
        let mut open: Vec<usize> = Vec::new();
        let mut at = 0;
        while let Some(&byte) = text.get(at) {
            match byte {
                b'"' => match skip_string(text, at) {
                    Some(end) => {
                        at = end;
                        continue;
                    }
                    None => break,
                },
                b'{' | b'[' => {
                    open.push(index.spans.len());
                    index.spans.push((at as u32, 0));
                }
                b'}' | b']' => {
                    if let Some(span) = open.pop() {
                        index.spans[span].1 = (at + 1) as u32;
                    }
                }
                b'\n' | b' ' => {
                    at = skip_spaces(text, at + 1);
                    continue;
                }
                _ => {}
            }
            at += 1;
        }
        index
    }

    /// The end of the container starting at `start` of `text`, when `text`
    /// lies in the indexed text and the container closes inside `text`.
    fn end_of(&self, text: &[u8], start: usize) -> Option<usize> {
        let offset = (text.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        let at = offset.checked_add(start).filter(|&at| at < self.text.len())?;
        let span = self.spans.binary_search_by_key(&(at as u32), |&(start, _)| start).ok()?;
        let end = (self.spans[span].1 as usize).checked_sub(offset).filter(|&end| end > start)?;
        (end <= text.len()).then_some(end)
    }
}

/// Skips the value at `start`, with the index when there is one.
fn skip_in(text: &[u8], start: usize, index: Option<&Index<'_>>) -> Option<usize> {
    if let Some(index) = index
        && matches!(text.get(start), Some(b'{' | b'['))
        && let Some(end) = index.end_of(text, start)
    {
        return Some(end);
    }
    skip_value(text, start)
}

/// Where `part`, a slice of `text` (a member or element found in it),
/// sits in `text`: slices can then be kept as ranges beside an owned text.
pub fn range_of(text: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize).min(text.len());
    start..(start + part.len()).min(text.len())
}

/// Whether `value` is JSON `null` (or nothing at all).
pub fn is_null(value: &[u8]) -> bool {
    matches!(value.trim_ascii(), b"null" | b"")
}

/// An object key as written between its quotes, escapes included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<'a>(pub &'a [u8]);

impl<'a> Key<'a> {
    /// Whether the key, once unescaped, is `name`.
    pub fn is(&self, name: &str) -> bool {
        if !self.0.contains(&b'\\') {
            return self.0 == name.as_bytes();
        }
        unescape(self.0).is_some_and(|key| key == name)
    }

    /// The key unescaped (borrowed when it has no escapes); `None` when it
    /// is not valid UTF-8 or has a broken escape.
    pub fn name(&self) -> Option<std::borrow::Cow<'a, str>> {
        if self.0.contains(&b'\\') {
            unescape(self.0).map(std::borrow::Cow::Owned)
        } else {
            std::str::from_utf8(self.0).ok().map(std::borrow::Cow::Borrowed)
        }
    }
}

/// Iterator over an object's members, from [`members`].
#[derive(Debug, Clone)]
pub struct Members<'t, 'i> {
    text: &'t [u8],
    at: usize,
    index: Option<&'i Index<'t>>,
}

impl<'a> Members<'a, '_> {
    /// The next key and where its value starts.
    fn next_key(&mut self) -> Option<(Key<'a>, usize)> {
        let key_start = skip_separator(self.text, self.at)?;
        if self.text.get(key_start) != Some(&b'"') {
            self.at = self.text.len();
            return None;
        }
        let key_end = skip_string(self.text, key_start)?;
        let colon = skip_whitespace(self.text, key_end);
        if self.text.get(colon) != Some(&b':') {
            self.at = self.text.len();
            return None;
        }
        Some((Key(&self.text[key_start + 1..key_end - 1]), skip_whitespace(self.text, colon + 1)))
    }
}

impl<'a> Iterator for Members<'a, '_> {
    type Item = (Key<'a>, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, value_start) = self.next_key()?;
        let value_end = skip_in(self.text, value_start, self.index)?;
        self.at = value_end;
        Some((key, &self.text[value_start..value_end]))
    }
}

/// Iterator over an array's elements, from [`elements`].
#[derive(Debug, Clone)]
pub struct Elements<'t, 'i> {
    text: &'t [u8],
    at: usize,
    index: Option<&'i Index<'t>>,
}

impl<'a> Iterator for Elements<'a, '_> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<Self::Item> {
        let start = skip_separator(self.text, self.at)?;
        if matches!(self.text.get(start), None | Some(b']' | b'}')) {
            self.at = self.text.len();
            return None;
        }
        let end = skip_in(self.text, start, self.index).filter(|&end| end > start)?;
        self.at = end;
        Some(&self.text[start..end])
    }
}

/// Moves past whitespace and one comma; `None` at the end of the container.
fn skip_separator(text: &[u8], at: usize) -> Option<usize> {
    let mut at = skip_whitespace(text, at);
    if text.get(at) == Some(&b',') {
        at = skip_whitespace(text, at + 1);
    }
    match text.get(at) {
        None | Some(b'}' | b']') => None,
        Some(_) => Some(at),
    }
}

fn skip_whitespace(text: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = text.get(at) {
        at = skip_spaces(text, at + 1);
    }
    at
}

/// Past a run of spaces starting at `at`, eight at a time: the indentation
/// of pretty-printed JSON (as the API server sends it) is most of its
/// bytes outside strings.
fn skip_spaces(text: &[u8], mut at: usize) -> usize {
    const SPACES: u64 = ONES * b' ' as u64;
    while let Some(chunk) = text.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let other = word ^ SPACES;
        if other != 0 {
            return at + (other.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while text.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

/// The index just past the value starting at `start`; `None` when the text
/// ends first.
pub fn skip_value(text: &[u8], start: usize) -> Option<usize> {
    match *text.get(start)? {
        b'"' => skip_string(text, start),
        b'{' | b'[' => skip_container(text, start),
        _ => {
            // A number, true, false or null: up to the next delimiter.
            let len = text[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                .unwrap_or(text.len() - start);
            Some(start + len)
        }
    }
}

/// Skips an object or array, counting brackets outside strings. (Between
/// strings there are only a few bytes, `":"` or `","`: looking at them one
/// at a time costs fewer instructions than eight at a time.)
fn skip_container(text: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    loop {
        match *text.get(at)? {
            b'"' => {
                at = skip_string(text, at)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(at + 1);
                }
            }
            b'\n' | b' ' => {
                at = skip_spaces(text, at + 1);
                continue;
            }
            _ => {}
        }
        at += 1;
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of `word` that equals `byte` (exact for the lowest
/// such byte, which is the one used).
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Skips the string whose opening quote is at `start`, returning the index
/// past its closing quote. Looks at eight bytes at a time for a quote or a
/// backslash: strings are most of a Kubernetes object's bytes.
fn skip_string(text: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    loop {
        while let Some(chunk) = text.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            let found = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
            if found != 0 {
                at += (found.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        match *text.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

/// Decodes a string's escapes (the text between its quotes).
fn unescape(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = std::str::from_utf8(raw).ok()?.chars();
    while let Some(c) = rest.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match rest.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let high = hex4(&mut rest)?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    if rest.next()? != '\\' || rest.next()? != 'u' {
                        return None;
                    }
                    let low = hex4(&mut rest).filter(|low| (0xDC00..0xE000).contains(low))?;
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    (0..4).try_fold(0, |acc, _| Some(acc * 16 + chars.next()?.to_digit(16)?))
}

#[cfg(test)]
mod tests;
