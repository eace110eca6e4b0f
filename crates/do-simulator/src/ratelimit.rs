//! Sliding-window rate limiting with the API's headers.
//!
//! As documented, each request counts against the hourly budget for one hour after it was
//! made (not until a fixed reset), so `ratelimit-reset` is the moment the oldest counted
//! request stops counting. Refused requests do not count.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use axum::response::Response;

use crate::config::RateLimitConfig;

const HOUR: Duration = Duration::from_secs(3_600);
const MINUTE: Duration = Duration::from_secs(60);

/// The outcome of one check, and what the headers must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) allowed: bool,
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    /// Unix seconds.
    pub(crate) reset: u64,
}

impl Verdict {
    /// Puts the three `ratelimit-*` headers on `response`.
    pub(crate) fn stamp(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset));
    }
}

/// The request history of the one token the simulator knows.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    hour: VecDeque<Instant>,
    minute: VecDeque<Instant>,
    key_lists: VecDeque<Instant>,
}

fn drop_older(window: &mut VecDeque<Instant>, now: Instant, span: Duration) {
    while window.front().is_some_and(|t| now.duration_since(*t) >= span) {
        window.pop_front();
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn count(window: &VecDeque<Instant>) -> u32 {
    u32::try_from(window.len()).unwrap_or(u32::MAX)
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        Self { config, hour: VecDeque::new(), minute: VecDeque::new(), key_lists: VecDeque::new() }
    }

    /// Replaces the limits; the history is kept.
    pub(crate) fn reconfigure(&mut self, config: RateLimitConfig) {
        self.config = config;
    }

    /// Forgets every counted request.
    pub(crate) fn clear(&mut self) {
        self.hour.clear();
        self.minute.clear();
        self.key_lists.clear();
    }

    fn prune(&mut self, now: Instant) {
        drop_older(&mut self.hour, now, HOUR);
        drop_older(&mut self.minute, now, MINUTE);
        drop_older(&mut self.key_lists, now, MINUTE);
    }

    fn verdict(&self, now: Instant, allowed: bool) -> Verdict {
        let used = count(&self.hour);
        let reset = match self.hour.front() {
            // Round up so the header never names a second at which the request still counts.
            Some(oldest) => {
                let left = (*oldest + HOUR).saturating_duration_since(now);
                unix_now() + left.as_secs() + u64::from(left.subsec_nanos() > 0)
            }
            None => unix_now(),
        };
        Verdict {
            allowed,
            limit: self.config.per_hour,
            remaining: self.config.per_hour.saturating_sub(used),
            reset,
        }
    }

    /// The headers' values without counting a request (for answers refused earlier).
    pub(crate) fn peek(&mut self, now: Instant) -> Verdict {
        self.prune(now);
        self.verdict(now, true)
    }

    /// Counts one request if the budgets allow it; `key_list` marks the specially limited
    /// `GET /v2/account/keys`.
    pub(crate) fn check(&mut self, now: Instant, key_list: bool) -> Verdict {
        self.prune(now);
        let over_keys = key_list
            && self.config.key_list_per_minute.is_some_and(|max| count(&self.key_lists) >= max);
        if count(&self.hour) >= self.config.per_hour
            || count(&self.minute) >= self.config.per_minute
            || over_keys
        {
            return self.verdict(now, false);
        }
        self.hour.push_back(now);
        self.minute.push_back(now);
        if key_list {
            self.key_lists.push_back(now);
        }
        self.verdict(now, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_hour: u32, per_minute: u32) -> RateLimitConfig {
        RateLimitConfig { per_hour, per_minute, key_list_per_minute: Some(2) }
    }

    #[test]
    fn burst_limit_refuses_then_recovers_after_a_minute() {
        let mut limiter = RateLimiter::new(limits(100, 3));
        let start = Instant::now();
        for expected_remaining in [99, 98, 97] {
            let v = limiter.check(start, false);
            assert!(v.allowed);
            assert_eq!(v.remaining, expected_remaining);
        }
        assert!(!limiter.check(start, false).allowed);
        assert!(limiter.check(start + MINUTE, false).allowed);
    }

    #[test]
    fn hourly_limit_counts_each_request_for_an_hour() {
        let mut limiter = RateLimiter::new(limits(2, 100));
        let start = Instant::now();
        assert!(limiter.check(start, false).allowed);
        assert!(limiter.check(start + MINUTE, false).allowed);
        let refused = limiter.check(start + MINUTE * 2, false);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // The first request stops counting an hour after it was made.
        assert!(limiter.check(start + HOUR, false).allowed);
    }

    #[test]
    fn key_listing_has_its_own_budget() {
        let mut limiter = RateLimiter::new(limits(100, 100));
        let now = Instant::now();
        assert!(limiter.check(now, true).allowed);
        assert!(limiter.check(now, true).allowed);
        assert!(!limiter.check(now, true).allowed);
        assert!(limiter.check(now, false).allowed);
    }
}
