//! How a simulator starts: its token, port, latencies and limits.

use std::time::Duration;

/// Request budgets, as the real API enforces them per token.
///
/// The documented limits are 5,000 requests per hour and 250 per minute, each request
/// counting for one hour (and one minute) after it was made, plus a separate limit of 10
/// `GET /v2/account/keys` per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests allowed in any sliding hour; also the `ratelimit-limit` header.
    pub per_hour: u32,
    /// Requests allowed in any sliding minute (the burst limit).
    pub per_minute: u32,
    /// `GET /v2/account/keys` requests allowed per minute; `None` for no such limit.
    pub key_list_per_minute: Option<u32>,
}

impl RateLimitConfig {
    /// The limits the real API documents.
    pub const DOCUMENTED: Self =
        Self { per_hour: 5_000, per_minute: 250, key_list_per_minute: Some(10) };

    /// Limits no test will reach, for tests that are not about rate limiting.
    pub const UNLIMITED: Self =
        Self { per_hour: u32::MAX, per_minute: u32::MAX, key_list_per_minute: None };
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self::DOCUMENTED
    }
}

/// Everything [`crate::Simulator::start`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The only bearer token the simulator accepts.
    pub token: String,
    /// The loopback port to listen on; 0 picks a free one.
    pub port: u16,
    /// How long a new Droplet stays `new` (no networks) before it turns `active`.
    pub create_latency: Duration,
    /// How long a Droplet action stays `in-progress`.
    pub action_latency: Duration,
    /// The rate limits.
    pub rate_limit: RateLimitConfig,
    /// The account's `droplet_limit`; creating more Droplets is refused with 422.
    pub droplet_limit: u32,
}

impl SimConfig {
    /// A configuration with the given token and every other setting at its default.
    pub fn new(token: impl Into<String>) -> Self {
        Self { token: token.into(), ..Self::default() }
    }

    /// Sets [`SimConfig::create_latency`].
    #[must_use]
    pub fn with_create_latency(mut self, latency: Duration) -> Self {
        self.create_latency = latency;
        self
    }

    /// Sets [`SimConfig::action_latency`].
    #[must_use]
    pub fn with_action_latency(mut self, latency: Duration) -> Self {
        self.action_latency = latency;
        self
    }

    /// Sets [`SimConfig::rate_limit`].
    #[must_use]
    pub fn with_rate_limit(mut self, rate_limit: RateLimitConfig) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Sets [`SimConfig::droplet_limit`].
    #[must_use]
    pub fn with_droplet_limit(mut self, limit: u32) -> Self {
        self.droplet_limit = limit;
        self
    }
}

impl Default for SimConfig {
    /// Token `sim-token`, a free port, no latencies, the documented rate limits and a
    /// Droplet limit of 1,000 (real accounts start lower, but tests create many).
    fn default() -> Self {
        Self {
            token: "sim-token".to_owned(),
            port: 0,
            create_latency: Duration::ZERO,
            action_latency: Duration::ZERO,
            rate_limit: RateLimitConfig::DOCUMENTED,
            droplet_limit: 1_000,
        }
    }
}
