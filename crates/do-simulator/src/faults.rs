//! Injected misbehaviour: added latency, forced 429s and 5xx answers, failed actions.
//!
//! Faults are consumed in the order they were added; a counted fault disappears once it
//! has fired its number of times.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which requests a fault applies to: an optional method and an optional path prefix.
///
/// The prefix is compared with the request path only (no query), so `/v2/droplets` also
/// covers `/v2/droplets/42/actions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMatcher {
    /// An HTTP method such as `POST`; `None` matches every method.
    #[serde(default)]
    pub method: Option<String>,
    /// A path prefix such as `/v2/droplets`; `None` matches every path.
    #[serde(default)]
    pub path_prefix: Option<String>,
}

impl RequestMatcher {
    /// Matches every API request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches requests whose path starts with `prefix`, whatever their method.
    pub fn path(prefix: impl Into<String>) -> Self {
        Self { method: None, path_prefix: Some(prefix.into()) }
    }

    /// Matches requests with this method whose path starts with `prefix`.
    pub fn route(method: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self { method: Some(method.into()), path_prefix: Some(prefix.into()) }
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
    }
}

/// A fault that fires a limited number of times.
#[derive(Debug, Clone)]
struct Counted {
    matcher: RequestMatcher,
    remaining: u32,
    status: u16,
}

/// The injected faults and the latencies currently in force.
#[derive(Debug, Clone)]
pub(crate) struct Faults {
    pub(crate) create_latency: Duration,
    pub(crate) action_latency: Duration,
    latencies: Vec<(RequestMatcher, Duration)>,
    rate_limited: Vec<Counted>,
    failures: Vec<Counted>,
    create_failures: u32,
    action_errors: Vec<String>,
}

/// Fires the first matching fault with turns left, removing it once spent.
fn take(list: &mut Vec<Counted>, method: &str, path: &str) -> Option<u16> {
    let index = list.iter().position(|f| f.remaining > 0 && f.matcher.matches(method, path))?;
    let fault = &mut list[index];
    fault.remaining -= 1;
    let status = fault.status;
    if fault.remaining == 0 {
        list.remove(index);
    }
    Some(status)
}

impl Faults {
    pub(crate) fn new(create_latency: Duration, action_latency: Duration) -> Self {
        Self {
            create_latency,
            action_latency,
            latencies: Vec::new(),
            rate_limited: Vec::new(),
            failures: Vec::new(),
            create_failures: 0,
            action_errors: Vec::new(),
        }
    }

    pub(crate) fn add_latency(&mut self, matcher: RequestMatcher, delay: Duration) {
        self.latencies.push((matcher, delay));
    }

    /// The delay to add before answering: the sum of every matching latency fault.
    pub(crate) fn latency_for(&self, method: &str, path: &str) -> Duration {
        self.latencies.iter().filter(|(m, _)| m.matches(method, path)).map(|(_, d)| *d).sum()
    }

    pub(crate) fn add_rate_limited(&mut self, matcher: RequestMatcher, count: u32) {
        if count > 0 {
            self.rate_limited.push(Counted { matcher, remaining: count, status: 429 });
        }
    }

    pub(crate) fn take_rate_limited(&mut self, method: &str, path: &str) -> bool {
        take(&mut self.rate_limited, method, path).is_some()
    }

    pub(crate) fn add_failures(&mut self, matcher: RequestMatcher, count: u32, status: u16) {
        if count > 0 {
            self.failures.push(Counted { matcher, remaining: count, status });
        }
    }

    /// The status to fail this request with, before it has any effect.
    pub(crate) fn take_failure(&mut self, method: &str, path: &str) -> Option<u16> {
        take(&mut self.failures, method, path)
    }

    pub(crate) fn add_create_failures(&mut self, count: u32) {
        self.create_failures = self.create_failures.saturating_add(count);
    }

    /// Whether this successful Droplet create must nevertheless answer 500.
    pub(crate) fn take_create_failure(&mut self) -> bool {
        let fire = self.create_failures > 0;
        self.create_failures = self.create_failures.saturating_sub(1);
        fire
    }

    pub(crate) fn add_action_error(&mut self, action_type: impl Into<String>) {
        self.action_errors.push(action_type.into());
    }

    /// Whether the action of this type being started now must end `errored`.
    pub(crate) fn take_action_error(&mut self, action_type: &str) -> bool {
        match self.action_errors.iter().position(|t| t == action_type) {
            Some(index) => {
                self.action_errors.remove(index);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_compares_method_and_prefix() {
        let m = RequestMatcher::route("post", "/v2/droplets");
        assert!(m.matches("POST", "/v2/droplets/7/actions"));
        assert!(!m.matches("GET", "/v2/droplets"));
        assert!(!m.matches("POST", "/v2/firewalls"));
        assert!(RequestMatcher::any().matches("DELETE", "/anything"));
    }

    #[test]
    fn counted_faults_fire_in_order_and_run_out() {
        let mut faults = Faults::new(Duration::ZERO, Duration::ZERO);
        faults.add_failures(RequestMatcher::path("/v2/droplets"), 1, 503);
        faults.add_failures(RequestMatcher::any(), 1, 500);
        assert_eq!(faults.take_failure("GET", "/v2/droplets"), Some(503));
        assert_eq!(faults.take_failure("GET", "/v2/droplets"), Some(500));
        assert_eq!(faults.take_failure("GET", "/v2/droplets"), None);
    }

    #[test]
    fn action_errors_are_one_shot_per_type() {
        let mut faults = Faults::new(Duration::ZERO, Duration::ZERO);
        faults.add_action_error("resize");
        assert!(!faults.take_action_error("snapshot"));
        assert!(faults.take_action_error("resize"));
        assert!(!faults.take_action_error("resize"));
    }
}
