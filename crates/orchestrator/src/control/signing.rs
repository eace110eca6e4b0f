//! Signing and checking control requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::FleetKey;

pub const TIMESTAMP: &str = "x-orchestrator-timestamp";
pub const NONCE: &str = "x-orchestrator-nonce";
pub const SENDER: &str = "x-orchestrator-sender";
pub const SIGNATURE: &str = "x-orchestrator-signature";

/// How far a request's time may be from the receiver's clock, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 30;

/// The headers that sign one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub timestamp: i64,
    pub nonce: String,
    pub sender: String,
    pub signature: String,
}

/// Signs a request from `sender` at `timestamp` (Unix seconds).
pub fn sign(
    key: &FleetKey,
    method: &str,
    path: &str,
    body: &[u8],
    sender: &str,
    timestamp: i64,
) -> Signature {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).expect("the system has a random source");
    let nonce = hex::encode(nonce);
    let signature = hex::encode(
        mac(key, method, path, body, sender, timestamp, &nonce).finalize().into_bytes(),
    );
    Signature { timestamp, nonce, sender: sender.to_string(), signature }
}

fn mac(
    key: &FleetKey,
    method: &str,
    path: &str,
    body: &[u8],
    sender: &str,
    timestamp: i64,
    nonce: &str,
) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    let digest = hex::encode(Sha256::digest(body));
    mac.update(format!("{method}\n{path}\n{sender}\n{timestamp}\n{nonce}\n{digest}").as_bytes());
    mac
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request is not signed")]
    Unsigned,
    #[error("the request's signature does not match (another fleet's key, or a forgery)")]
    BadSignature,
    #[error("the request's time is too far from this droplet's clock")]
    Stale,
    #[error("the request was already received once")]
    Replayed,
}

/// Counts of refused requests, by reason.
#[derive(Debug, Default, Serialize)]
pub struct RefusalCounts {
    pub unsigned: AtomicU64,
    pub bad_signature: AtomicU64,
    pub stale: AtomicU64,
    pub replayed: AtomicU64,
}

impl RefusalCounts {
    pub fn count(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::Unsigned => &self.unsigned,
            Refusal::BadSignature => &self.bad_signature,
            Refusal::Stale => &self.stale,
            Refusal::Replayed => &self.replayed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn total(&self) -> u64 {
        [&self.unsigned, &self.bad_signature, &self.stale, &self.replayed]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Checks signatures and remembers recent nonces so a captured request cannot be replayed.
pub struct Verifier {
    key: FleetKey,
    seen: Mutex<HashMap<String, i64>>,
    pub refusals: RefusalCounts,
}

impl Verifier {
    pub fn new(key: FleetKey) -> Verifier {
        Verifier { key, seen: Mutex::new(HashMap::new()), refusals: RefusalCounts::default() }
    }

    /// Checks a request received at `now` (Unix seconds); counts and returns any refusal.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        signature: Option<&Signature>,
        now: i64,
    ) -> Result<(), Refusal> {
        let result = self.check(method, path, body, signature, now);
        if let Err(refusal) = result {
            self.refusals.count(refusal);
        }
        result
    }

    fn check(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        signature: Option<&Signature>,
        now: i64,
    ) -> Result<(), Refusal> {
        let signature = signature.ok_or(Refusal::Unsigned)?;
        let expected = hex::decode(&signature.signature).map_err(|_| Refusal::BadSignature)?;
        mac(
            &self.key,
            method,
            path,
            body,
            &signature.sender,
            signature.timestamp,
            &signature.nonce,
        )
        .verify_slice(&expected)
        .map_err(|_| Refusal::BadSignature)?;
        if (now - signature.timestamp).abs() > MAX_SKEW_SECONDS {
            return Err(Refusal::Stale);
        }
        let mut seen = self.seen.lock().expect("the nonce table is never poisoned");
        seen.retain(|_, at| now - *at <= 2 * MAX_SKEW_SECONDS);
        if seen.insert(signature.nonce.clone(), signature.timestamp).is_some() {
            return Err(Refusal::Replayed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_request_passes_once() {
        let key = FleetKey::generate();
        let verifier = Verifier::new(key.clone());
        let signature = sign(&key, "POST", "/v1/fleet", b"{}", "cli", NOW);
        assert_eq!(verifier.verify("POST", "/v1/fleet", b"{}", Some(&signature), NOW + 1), Ok(()));
        assert_eq!(
            verifier.verify("POST", "/v1/fleet", b"{}", Some(&signature), NOW + 2),
            Err(Refusal::Replayed)
        );
        assert_eq!(verifier.refusals.total(), 1);
    }

    #[test]
    fn tampering_another_key_and_old_requests_are_refused() {
        let key = FleetKey::generate();
        let verifier = Verifier::new(key.clone());
        let signature = sign(&key, "POST", "/v1/fleet", b"{}", "cli", NOW);
        assert_eq!(
            verifier.verify("POST", "/v1/fleet", b"{\"x\":1}", Some(&signature), NOW),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verifier.verify("POST", "/v1/other", b"{}", Some(&signature), NOW),
            Err(Refusal::BadSignature)
        );
        let other = sign(&FleetKey::generate(), "POST", "/v1/fleet", b"{}", "cli", NOW);
        assert_eq!(
            verifier.verify("POST", "/v1/fleet", b"{}", Some(&other), NOW),
            Err(Refusal::BadSignature)
        );
        let old = sign(&key, "POST", "/v1/fleet", b"{}", "cli", NOW - 600);
        assert_eq!(
            verifier.verify("POST", "/v1/fleet", b"{}", Some(&old), NOW),
            Err(Refusal::Stale)
        );
        assert_eq!(verifier.verify("POST", "/v1/fleet", b"{}", None, NOW), Err(Refusal::Unsigned));
        assert_eq!(verifier.refusals.total(), 5);
    }
}
