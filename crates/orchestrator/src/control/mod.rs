//! The control channel: how the command line and agents talk.
//!
//! Every request that changes something is signed with the fleet key made at `--init`
//! (HMAC-SHA256 over method, path, time, a nonce and the body's digest). An agent refuses
//! unsigned, badly signed, stale, replayed and other-fleet requests, and counts each refusal.
//! The key itself never travels with a request.

pub mod client;
pub mod key;
pub mod sealed;
pub mod signing;

pub use client::AgentClient;
pub use key::FleetKey;
