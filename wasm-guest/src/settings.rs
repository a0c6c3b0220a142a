use serde::de::DeserializeOwned;

use crate::Error;

/// A policy's settings: deserialised from the manifest's `spec.settings`
/// (missing or `null` means `Default`), then checked by [`Settings::validate`].
///
/// Put `#[serde(deny_unknown_fields)]` on the type so a misspelt setting is
/// refused when the policy loads rather than silently ignored.
pub trait Settings: DeserializeOwned + Default {
    /// Checks values serde cannot: ranges, patterns, combinations.
    /// The message says which setting is wrong and what would be accepted.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Settings of a policy that takes none: any key is refused.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Settings for NoSettings {}

/// Parses and validates settings JSON, as the host's load step does.
pub fn parse_settings<S: Settings>(json: &[u8]) -> Result<S, Error> {
    let trimmed = json.trim_ascii();
    let settings = if trimmed.is_empty() || trimmed == b"null" {
        S::default()
    } else {
        // The path names the setting at fault: `requireDropAll: invalid type...`.
        let mut json = serde_json::Deserializer::from_slice(trimmed);
        serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let names_itself = inner.to_string().starts_with("unknown field");
            match path.as_str() {
                "." | "" => Error::json("settings", inner),
                _ if names_itself => Error::json("settings", inner),
                _ => Error::new(format!("cannot read settings: {path}: {inner}")),
            }
        })?
    };
    settings.validate().map_err(Error::new)?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_null_settings_are_defaults() {
        assert_eq!(parse_settings::<NoSettings>(b"").unwrap(), NoSettings {});
        assert_eq!(parse_settings::<NoSettings>(b"null").unwrap(), NoSettings {});
        assert_eq!(parse_settings::<NoSettings>(b"{}").unwrap(), NoSettings {});
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Limits {
        #[allow(dead_code)]
        max: u32,
    }
    impl Settings for Limits {}

    #[test]
    fn a_setting_of_the_wrong_type_is_named() {
        let err = parse_settings::<Limits>(br#"{"max": "three"}"#).unwrap_err();
        assert!(err.message().starts_with("cannot read settings: max: invalid type: string"), "{err}");
    }

    #[test]
    fn unknown_setting_is_named() {
        let err = parse_settings::<NoSettings>(br#"{"max": 3}"#).unwrap_err();
        assert!(err.message().contains("unknown field `max`"), "{err}");
    }
}
