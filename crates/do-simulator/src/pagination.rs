//! Pages of collections, as the API documents them.
//!
//! `page` starts at 1, `per_page` defaults to 20 and is capped at 200. Every list carries
//! `meta.total` and `links.pages`, whose keys appear only where they make sense: no `first`
//! or `prev` on the first page, no `next` or `last` on the last one.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// Items per page when the request does not say.
pub(crate) const DEFAULT_PER_PAGE: usize = 20;
/// The most items a page may hold.
pub(crate) const MAX_PER_PAGE: usize = 200;

/// Which page a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) page: usize,
    pub(crate) per_page: usize,
}

impl Page {
    /// Reads `page` and `per_page`; values that are absent or unreadable fall back to the
    /// defaults, and an oversized `per_page` is capped, as the real API does.
    pub(crate) fn from_query(query: &HashMap<String, String>) -> Self {
        let number = |key: &str| query.get(key).and_then(|v| v.trim().parse::<usize>().ok());
        let page = number("page").filter(|p| *p >= 1).unwrap_or(1);
        let per_page =
            number("per_page").filter(|p| *p >= 1).unwrap_or(DEFAULT_PER_PAGE).min(MAX_PER_PAGE);
        Self { page, per_page }
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The body of a list answer: `{key: [...page...], links: {pages: {...}}, meta: {total}}`.
///
/// `filters` are the request's other query parameters, repeated in every link so that
/// following `next` keeps listing the same selection.
pub(crate) fn list_body(
    key: &str,
    items: Vec<Value>,
    page: Page,
    base_url: &str,
    path: &str,
    filters: &[(&str, &str)],
) -> Value {
    let total = items.len();
    let last = total.div_ceil(page.per_page).max(1);
    let start = (page.page - 1).saturating_mul(page.per_page);
    let shown: Vec<Value> = items.into_iter().skip(start).take(page.per_page).collect();

    let mut extra = String::new();
    for (name, value) in filters {
        extra.push_str(&format!("&{}={}", encode(name), encode(value)));
    }
    let link = |n: usize| format!("{base_url}{path}?page={n}&per_page={}{extra}", page.per_page);

    let mut pages = Map::new();
    if page.page > 1 {
        pages.insert("first".into(), Value::String(link(1)));
        pages.insert("prev".into(), Value::String(link(page.page - 1)));
    }
    if page.page < last {
        pages.insert("next".into(), Value::String(link(page.page + 1)));
        pages.insert("last".into(), Value::String(link(last)));
    }

    let mut body = Map::new();
    body.insert(key.to_owned(), Value::Array(shown));
    body.insert("links".into(), json!({ "pages": pages }));
    body.insert("meta".into(), json!({ "total": total }));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn numbers(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!(i)).collect()
    }

    #[test]
    fn defaults_and_caps() {
        assert_eq!(Page::from_query(&query(&[])), Page { page: 1, per_page: 20 });
        let capped = Page::from_query(&query(&[("per_page", "500"), ("page", "0")]));
        assert_eq!(capped, Page { page: 1, per_page: 200 });
        let junk = Page::from_query(&query(&[("per_page", "x"), ("page", "-3")]));
        assert_eq!(junk, Page { page: 1, per_page: 20 });
    }

    #[test]
    fn first_page_links_forward_only() {
        let page = Page { page: 1, per_page: 20 };
        let body = list_body("things", numbers(45), page, "http://h", "/v2/things", &[]);
        assert_eq!(body["things"].as_array().map(Vec::len), Some(20));
        assert_eq!(body["meta"]["total"], json!(45));
        let pages = &body["links"]["pages"];
        assert_eq!(pages["next"], json!("http://h/v2/things?page=2&per_page=20"));
        assert_eq!(pages["last"], json!("http://h/v2/things?page=3&per_page=20"));
        assert!(pages.get("first").is_none() && pages.get("prev").is_none());
    }

    #[test]
    fn last_page_links_backward_only_and_keeps_filters() {
        let page = Page { page: 3, per_page: 20 };
        let filters = [("tag_name", "env:prod")];
        let body = list_body("things", numbers(45), page, "http://h", "/v2/t", &filters);
        assert_eq!(body["things"].as_array().map(Vec::len), Some(5));
        let pages = &body["links"]["pages"];
        assert_eq!(pages["prev"], json!("http://h/v2/t?page=2&per_page=20&tag_name=env%3Aprod"));
        assert!(pages.get("next").is_none() && pages.get("last").is_none());
    }

    #[test]
    fn a_single_page_has_no_links() {
        let body = list_body("things", numbers(3), Page::from_query(&query(&[])), "h", "/p", &[]);
        assert_eq!(body["links"], json!({ "pages": {} }));
    }
}
