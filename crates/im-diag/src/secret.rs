//! `Secret`: a credential (password, token, key) that never shows itself. `Debug` and
//! `Display` print `***` and serialising writes `***`, so it cannot reach a log line, an
//! error message, a printed config or a panic by accident. It lives here, with what governs
//! what is printed, so the project model (settings) and the registry client share it.

use std::fmt;

/// A password, token or other credential. Read it with [`Secret::expose`] only where it is
/// put on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the credential is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Serialised redacted: a printed config shows that a secret is set, never its value.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// Read from a credential file (a Docker config's `auth`, `identitytoken`).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_display_and_serialisation_never_show_the_value() {
        let secret = Secret::new("hunter2-canary");
        let shown = format!(
            "{secret:?} {:?} {secret} {}",
            Some(secret.clone()),
            serde_json::to_string(&secret).unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, r#"Secret(***) Some(Secret(***)) *** "***""#);
        assert_eq!(secret.expose(), "hunter2-canary");
        let read: Secret = serde_json::from_str(r#""from-file""#).unwrap();
        assert_eq!(read.expose(), "from-file");
    }
}
