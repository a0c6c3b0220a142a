//! Reading strings of a request without copying them.

use std::borrow::Cow;

use serde::Deserialize;

/// A string borrowed from the JSON input when it has no escapes, owned when
/// it has: how both the host and the guests read the strings of a request
/// they only look at. (serde borrows a `Cow<str>` only with
/// `#[serde(borrow)]` inside a derive; this is that derive, usable alone,
/// with `next_key` and `next_value`.)
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(transparent)]
pub struct CowStr<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl std::ops::Deref for CowStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_unless_escaped() {
        let plain: CowStr = serde_json::from_str(r#""pods""#).unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("pods")));
        let escaped: CowStr = serde_json::from_str(r#""a\"b""#).unwrap();
        assert!(matches!(escaped.0, Cow::Owned(ref s) if s == "a\"b"));
    }
}
