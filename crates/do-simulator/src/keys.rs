//! SSH keys of the account: `/v2/account/keys`, addressed by id or by fingerprint.
//!
//! The fingerprint is what DigitalOcean shows: the MD5 digest of the decoded key blob (the
//! base64 field of an OpenSSH public key line), as colon-separated lowercase hex pairs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult, parse_body};
use crate::pagination::{Page, list_body};
use crate::server::Shared;
use crate::state::{SshKey, Store};

const KEY_FORMAT: &str = "Key invalid, key should be of the format `type key [comment]`";

/// Decodes standard base64 (with or without `=` padding); `None` if it is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let data = text.trim_end_matches('=').as_bytes();
    // One leftover character cannot encode a byte; at most two pads are allowed.
    if data.len() % 4 == 1 || text.len() - data.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The MD5 fingerprint of an OpenSSH public key line, or `None` if the line is not one.
///
/// Besides decoding, this checks that the blob starts with the key type named on the line,
/// which is how every OpenSSH key blob begins.
pub(crate) fn fingerprint(public_key: &str) -> Option<String> {
    let mut fields = public_key.split_whitespace();
    let kind = fields.next()?;
    let blob = decode_base64(fields.next()?)?;
    let declared = blob.get(..4)?;
    let length = usize::try_from(u32::from_be_bytes(declared.try_into().ok()?)).ok()?;
    if blob.get(4..4 + length)? != kind.as_bytes() {
        return None;
    }
    let digest = Md5::digest(&blob);
    let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(pairs.join(":"))
}

fn key_json(key: &SshKey) -> Value {
    json!({
        "id": key.id,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "name": key.name,
    })
}

/// Finds a key by numeric id or by fingerprint.
fn find(store: &Store, id_or_fingerprint: &str) -> Option<u64> {
    match id_or_fingerprint.parse::<u64>() {
        Ok(id) => store.keys.contains_key(&id).then_some(id),
        Err(_) => store.keys.values().find(|k| k.fingerprint == id_or_fingerprint).map(|k| k.id),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeyRequest {
    name: Option<String>,
    public_key: Option<String>,
}

/// `GET /v2/account/keys`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let items = shared.store().keys.values().map(key_json).collect();
    let page = Page::from_query(&query);
    Json(list_body("ssh_keys", items, page, &shared.base_url, "/v2/account/keys", &[]))
}

/// `POST /v2/account/keys`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request: KeyRequest = parse_body(&body)?;
    let name = request
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::unprocessable("Name can't be blank"))?;
    let public_key = request.public_key.map(|k| k.trim().to_owned()).unwrap_or_default();
    let fingerprint =
        fingerprint(&public_key).ok_or_else(|| ApiError::unprocessable(KEY_FORMAT))?;
    let mut store = shared.store();
    if store.keys.values().any(|k| k.fingerprint == fingerprint) {
        return Err(ApiError::unprocessable("SSH Key is already in use on your account"));
    }
    let id = store.take_key_id();
    let key = SshKey { id, name, public_key, fingerprint };
    let shown = key_json(&key);
    store.keys.insert(id, key);
    Ok((StatusCode::CREATED, Json(json!({ "ssh_key": shown }))))
}

/// `GET /v2/account/keys/{id_or_fingerprint}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = shared.store();
    let id = find(&store, &key).ok_or_else(ApiError::not_found)?;
    let key = store.keys.get(&id).ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "ssh_key": key_json(key) })))
}

/// `PUT /v2/account/keys/{id_or_fingerprint}`: renames a key.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let request: KeyRequest = parse_body(&body)?;
    let mut store = shared.store();
    let id = find(&store, &key).ok_or_else(ApiError::not_found)?;
    let key = store.keys.get_mut(&id).ok_or_else(ApiError::not_found)?;
    if let Some(name) = request.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
        key.name = name;
    }
    Ok(Json(json!({ "ssh_key": key_json(key) })))
}

/// `DELETE /v2/account/keys/{id_or_fingerprint}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let mut store = shared.store();
    let id = find(&store, &key).ok_or_else(ApiError::not_found)?;
    store.keys.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Both expectations come from `ssh-keygen -l -E md5` on the same lines.
    const ED25519: &str = "ssh-ed25519 \
        AAAAC3NzaC1lZDI1NTE5AAAAIFCzw+rIctonAhxd2zbVr9UbBOTx3MWq4mc0gmPLNcfz sim@test";
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDyBKaMsPYJZU5EAWLOdtQxKKevqdJmf05ef\
        HLs4OY7joexlitywy4olIcq2B4VOpsf874dJHYje09ImXLmUnbpT7mfzgb7moATnLq1kTbVRqZEhiZ8kdHhCRhp\
        kp5DUmReZiinviDknfHXU7lkZ7pMwzJTtYrRRlq9omB7COOOgQ== rsa@test";

    #[test]
    fn fingerprints_match_ssh_keygen() {
        assert_eq!(
            fingerprint(ED25519).as_deref(),
            Some("d7:fd:2f:15:a2:22:8b:6c:e7:8f:47:96:e3:22:22:7e")
        );
        assert_eq!(
            fingerprint(RSA).as_deref(),
            Some("38:43:25:b6:5f:09:1b:47:7a:01:20:89:c9:3f:65:97")
        );
    }

    #[test]
    fn malformed_keys_have_no_fingerprint() {
        assert_eq!(fingerprint(""), None);
        assert_eq!(fingerprint("ssh-ed25519"), None);
        assert_eq!(fingerprint("ssh-ed25519 not*base64"), None);
        // A valid blob under the wrong type name.
        let relabelled = ED25519.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert_eq!(fingerprint(&relabelled), None);
    }

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("aGk="), Some(b"hi".to_vec()));
        assert_eq!(decode_base64(""), Some(Vec::new()));
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("aGk==="), None);
    }
}
