//! A value that must never be printed: its `Debug` and `Display` say `[redacted]`.

use std::fmt;

/// A secret string, such as an API token. Read it with [`Secret::expose`], only where it is
/// handed to the one place that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let token = Secret::new("dop_v1_abc");
        assert_eq!(format!("{token} {token:?}"), "[redacted] [redacted]");
        assert_eq!(token.expose(), "dop_v1_abc");
    }
}
