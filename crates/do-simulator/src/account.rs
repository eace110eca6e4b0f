//! `GET /v2/account`: the one account the token belongs to.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::ids;
use crate::server::Shared;

/// `GET /v2/account`.
pub(crate) async fn get_account(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "account": {
            "droplet_limit": shared.config.droplet_limit,
            "floating_ip_limit": 3,
            "reserved_ip_limit": 3,
            "volume_limit": 100,
            "email": "simulator@example.com",
            "name": "DigitalOcean Simulator",
            // Stable per token, like a real account's UUID.
            "uuid": ids::uuid_from(seed_of(&shared.token)).replace('-', ""),
            "email_verified": true,
            "status": "active",
            "status_message": "",
            "team": { "uuid": ids::uuid_from(seed_of("team")), "name": "My Team" },
        }
    }))
}

/// FNV-1a, to turn a string into a seed.
fn seed_of(text: &str) -> u64 {
    text.bytes()
        .fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3))
}
