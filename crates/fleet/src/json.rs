//! Strict reading of the JSON configuration files.
//!
//! serde_json alone would let a repeated key win silently and ignore text after the object;
//! both are almost always a paste gone wrong, so both are refused here with the JSON path.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Why a JSON file was refused: the dotted path of the problem (empty for the whole file) and
/// what is wrong.
pub type Refusal = (String, String);

/// Parses `text` as a JSON object into `T`.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Refusal> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.trim_start().starts_with('{') {
        let what = if text.trim().is_empty() { "is empty" } else { "is not a JSON object" };
        return Err((String::new(), format!("{what}; it must hold one object, {{ … }}")));
    }

    let mut deserializer = serde_json::Deserializer::from_str(text);
    let checked = NoDuplicates { path: String::new() }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Err(err) = checked {
        return Err(split(&err.to_string()));
    }

    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." || path == "?" { String::new() } else { path };
        (path, err.into_inner().to_string())
    })
}

/// Splits the duplicate checker's `path\u{0}message` errors; syntax errors have no path.
fn split(message: &str) -> Refusal {
    match message.split_once('\u{0}') {
        Some((path, rest)) => (path.to_string(), rest.to_string()),
        None => (String::new(), message.to_string()),
    }
}

/// Walks a JSON document and fails on the first object with a key twice.
struct NoDuplicates {
    path: String,
}

impl NoDuplicates {
    fn child(&self, key: &str) -> NoDuplicates {
        let path =
            if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) };
        NoDuplicates { path }
    }
}

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(NoDuplicates { path: format!("{}[{index}]", self.path) })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = self.child(&key);
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "{}\u{0}the key {key:?} appears twice",
                    child.path
                )));
            }
            map.next_value_seed(child)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> Refusal {
        parse::<serde_json::Value>(text).expect_err("refused")
    }

    #[test]
    fn repeated_keys_are_named_with_their_path() {
        let (path, problem) = refusal(
            r#"{"projects": {"a": {"services": {"backend": {}, "backend": {"type": "worker"}}}}}"#,
        );
        assert_eq!(path, "projects.a.services.backend");
        assert!(problem.starts_with("the key \"backend\" appears twice at line 1"), "{problem}");
    }

    #[test]
    fn text_after_the_object_is_refused() {
        let (path, problem) = refusal("{\"provider\": \"local\"} xyz");
        assert_eq!(path, "");
        assert!(problem.contains("trailing characters"), "{problem}");
        assert!(refusal("{}\n{}").1.contains("trailing characters"));
    }

    #[test]
    fn an_array_or_an_empty_file_is_not_an_object() {
        assert!(refusal("[1, 2]").1.starts_with("is not a JSON object"));
        assert!(refusal("  ").1.starts_with("is empty"));
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        assert!(parse::<serde_json::Value>("\u{feff}{\"a\": 1}").is_ok());
    }
}
